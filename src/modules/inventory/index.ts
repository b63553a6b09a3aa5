export type { Inventory, CollectionDef, FieldDef, PurposeDef, PurposeUse } from './load.ts';
export { loadInventory, InventoryError, DEFAULT_INVENTORY_FILE, SERVED_COLLECTIONS } from './load.ts';
export type { StoredValue, SchemaOptions } from './fields.ts';
export { writeSchema, responseShape, normaliseEmail, normalisePhone, fieldWriteSchema } from './fields.ts';
export { maskField } from './mask.ts';
export type { LegalBasis, Mask, NoticeLanguage, Retention } from './schema.ts';
export { NOTICE_LANGUAGES } from './schema.ts';
