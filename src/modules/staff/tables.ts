/** staff: roles, training records, threat reports, just-in-time elevations. Filled in by the staff module. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface StaffTables {}
