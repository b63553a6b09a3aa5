import { serve } from './server.ts';

// load config → build app → listen; nothing else.
await serve();
