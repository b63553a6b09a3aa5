export interface ApiKeyTables {
  api_keys: {
    id: string;
    name: string;
    secret_hash: string;
    purposes: string;
    created_at: string;
    revoked_at: string | null;
  };
}
