/** identity: customer and staff credentials, factors, sessions, counters. Filled in by the identity module. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface IdentityTables {}
