/** identity: browser and API sessions (filled in by the session layer). */
export interface SessionTables {}
