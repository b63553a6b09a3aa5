import { loadEnvFile } from './config/env-file.ts';
import { serve } from './server.ts';

// .env (optional; the real environment wins) → load config → build app → listen; nothing else.
loadEnvFile();
await serve();
