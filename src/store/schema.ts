import type { KeyTables } from '../crypto/tables.ts';
import type { IdempotencyTables } from '../http/idempotency-tables.ts';
import type { ApiKeyTables } from '../modules/apikeys/tables.ts';
import type { AuditTables } from '../modules/audit/tables.ts';
import type { VaultTables } from '../modules/vault/tables.ts';
import type { VaultErasureTables } from '../modules/vault/erasure-tables.ts';
import type { IdentityTables } from '../modules/identity/tables.ts';
import type { RetentionTables } from '../modules/retention/tables.ts';
import type { RightsTables } from '../modules/rights/tables.ts';
import type { StaffTables } from '../modules/staff/tables.ts';
import type { SessionTables } from '../modules/identity/sessions/session-tables.ts';
import type { ConsentTables } from '../modules/consent/tables.ts';
import type { ProcessorTables } from '../modules/processors/tables.ts';
import type { CardTables } from '../modules/cards/tables.ts';
import type { IncidentTables } from '../modules/incidents/tables.ts';
import type { DetectionTables } from '../modules/detection/tables.ts';

/**
 * The tables, as Kysely sees them: each module declares its own in `tables.ts` and no module
 * queries another's. Times are ISO-8601 text and binary values base64url text, so the same
 * migrations and queries run on SQLite and PostgreSQL.
 */
export interface Database extends KeyTables, VaultTables, AuditTables, ApiKeyTables, IdentityTables, StaffTables, SessionTables, IdempotencyTables, ConsentTables, ProcessorTables, CardTables, RightsTables, VaultErasureTables, RetentionTables, IncidentTables, DetectionTables {}
