/** processors: the registry of recipients (processors and independent controllers); rows are ended, never deleted. */
export interface ProcessorTables {
  processors: {
    /** `prc_…` */
    id: string;
    name: string;
    role: 'processor' | 'controller';
    /** JSON arrays of inventory purposes and data categories. */
    purposes: string;
    categories: string;
    /** ISO 3166-1 alpha-2. */
    country: string;
    safeguard: 'adequacy' | 'scc' | 'bcr' | null;
    /** YYYY-MM-DD */
    dpa_signed: string | null;
    retention: string | null;
    added_at: string;
    /** When it stopped receiving data (GDPR Art. 15(1)(c), 19: past recipients stay listed). */
    removed_at: string | null;
  };
}
