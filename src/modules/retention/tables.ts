/** retention: leases of singleton jobs, so one process at a time runs them (migration 0014-rights). */
export interface RetentionTables {
  job_leases: { name: string; holder: string; expires_at: string };
}
