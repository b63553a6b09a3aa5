export interface ApiKeyTables {
  api_keys: {
    id: string;
    name: string;
    secret_hash: string;
    purposes: string;
    created_at: string;
    revoked_at: string | null;
    /** When the key last authenticated a request, kept to the hour (migration 0019); null: not seen in use. */
    last_used_at: string | null;
    /** A reversible suspension (detection's lock_apikey response, `custos apikey suspend`); NULL when in use. */
    suspended_at: string | null;
  };
}
