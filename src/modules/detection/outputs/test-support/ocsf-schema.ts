import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/**
 * A checker of records against the pinned OCSF 1.3.0 schema, for tests: the fixture beside this
 * file was resolved from ocsf/ocsf-schema at tag 1.3.0 (extends and includes, enums merged with the
 * dictionary; profiles left out). It checks required attributes, `at_least_one` constraints,
 * that every attribute is one the class or object defines, scalar types, enum values, and each
 * nested object against its own definition.
 */
interface AttributeSpec {
  type: string;
  array?: boolean;
  enum?: number[];
  required?: boolean;
}
interface Definition {
  at_least_one: string[];
  attributes: Record<string, AttributeSpec>;
  class_uid?: number;
  category_uid?: number;
  caption?: string;
}
export const OCSF_SCHEMA = JSON.parse(readFileSync(new URL('./ocsf-1.3.0.json', import.meta.url), 'utf8')) as {
  version: string;
  classes: Record<string, Definition>;
  objects: Record<string, Definition>;
};

const INTEGER = new Set(['integer_t', 'long_t', 'timestamp_t', 'port_t']);
const STRING = new Set(['string_t', 'uuid_t', 'hostname_t', 'username_t', 'resource_uid_t', 'url_t', 'email_t', 'subnet_t', 'datetime_t', 'file_name_t', 'process_name_t', 'mac_t', 'file_hash_t', 'bytestring_t']);

function checkValue(value: unknown, spec: AttributeSpec, path: string, problems: string[]): void {
  if (spec.array === true) {
    if (!Array.isArray(value)) problems.push(`${path}: must be an array`);
    else value.forEach((v, i) => checkValue(v, { ...spec, array: false }, `${path}[${i}]`, problems));
    return;
  }
  const t = spec.type;
  if (INTEGER.has(t)) {
    if (!Number.isSafeInteger(value)) problems.push(`${path}: must be an integer (${t})`);
  } else if (STRING.has(t)) {
    if (typeof value !== 'string') problems.push(`${path}: must be a string (${t})`);
  } else if (t === 'ip_t') {
    if (typeof value !== 'string' || isIP(value) === 0) problems.push(`${path}: must be an IP address`);
  } else if (t === 'boolean_t') {
    if (typeof value !== 'boolean') problems.push(`${path}: must be a boolean`);
  } else if (t === 'float_t') {
    if (typeof value !== 'number') problems.push(`${path}: must be a number`);
  } else if (t === 'json_t') {
    // any JSON value
  } else if (t === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) problems.push(`${path}: must be an object`);
  } else {
    const definition = OCSF_SCHEMA.objects[t];
    if (definition === undefined) problems.push(`${path}: object type ${t} is not in the fixture`);
    else if (value === null || typeof value !== 'object' || Array.isArray(value)) problems.push(`${path}: must be a ${t} object`);
    else checkObject(value as Record<string, unknown>, definition, path, problems);
  }
  if (spec.enum !== undefined && typeof value === 'number' && !spec.enum.includes(value)) problems.push(`${path}: ${value} is not one of ${spec.enum.join(', ')}`);
}

function checkObject(record: Record<string, unknown>, definition: Definition, path: string, problems: string[]): void {
  for (const [name, spec] of Object.entries(definition.attributes))
    if (spec.required === true && record[name] === undefined) problems.push(`${path}.${name}: required`);
  if (definition.at_least_one.length > 0 && !definition.at_least_one.some((n) => record[n] !== undefined))
    problems.push(`${path}: needs one of ${definition.at_least_one.join(', ')}`);
  for (const [name, value] of Object.entries(record)) {
    const spec = definition.attributes[name];
    if (spec === undefined) problems.push(`${path}.${name}: not an attribute of this ${path === '' ? 'class' : 'object'}`);
    else if (value === undefined || value === null) problems.push(`${path}.${name}: null or undefined instead of left out`);
    else checkValue(value, spec, `${path}.${name}`, problems);
  }
}

/** Problems of `record` as an instance of class `className` (e.g. `authentication`); none when valid. */
export function ocsfProblems(record: Record<string, unknown>, className: string): string[] {
  const definition = OCSF_SCHEMA.classes[className];
  if (definition === undefined) return [`class ${className} is not in the fixture`];
  const problems: string[] = [];
  checkObject(record, definition, '', problems);
  if (record.class_uid !== definition.class_uid) problems.push(`class_uid must be ${definition.class_uid}`);
  if (record.category_uid !== definition.category_uid) problems.push(`category_uid must be ${definition.category_uid}`);
  if (record.type_uid !== (definition.class_uid ?? 0) * 100 + Number(record.activity_id)) problems.push('type_uid must be class_uid * 100 + activity_id');
  const metadata = record.metadata as { version?: unknown } | undefined;
  if (metadata?.version !== OCSF_SCHEMA.version) problems.push(`metadata.version must be ${OCSF_SCHEMA.version}`);
  return problems;
}

/** The class name of a record, from its class_uid. */
export function ocsfClassOf(record: Record<string, unknown>): string {
  const found = Object.entries(OCSF_SCHEMA.classes).find(([, d]) => d.class_uid === record.class_uid);
  return found?.[0] ?? `unknown class ${String(record.class_uid)}`;
}
