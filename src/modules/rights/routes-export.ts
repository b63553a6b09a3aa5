import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ExportService } from './export.ts';

/**
 * The download of an access or portability export, in the public scope: the signed link token is
 * the credential. A POST with the token in its JSON body, never a GET, so that a mail scanner
 * following the link in the mail cannot spend it: the link opens a page (web/account/export.html)
 * whose button sends the token from the URL fragment, which browsers never send to a server.
 */
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });

export function registerExportDownloadRoute(app: FastifyInstance, deps: { exports: ExportService }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/exports/download', {
    schema: {
      tags: ['rights'],
      summary: 'Download an access or portability export (single-use link)',
      description:
        'The ZIP archive (`application/zip`) of the export a completed access or portability request produced: `README.txt`, `export.json` (one structured document) and `csv/<collection>.csv`. Each link works once and until its `expires_at`; a used one answers `410 RIGHTS_EXPORT_LINK_USED`, an expired one `410 RIGHTS_EXPORT_LINK_EXPIRED`, an altered one `403 RIGHTS_EXPORT_LINK_INVALID`. Every download, and every refused one, is audited.',
      body: z.object({ token: z.string().min(1).max(200) }).strict(),
      produces: ['application/zip'],
      response: { 200: z.string().meta({ description: 'The ZIP archive.', format: 'binary' }), 400: errorBody, 403: errorBody, 404: errorBody, 410: errorBody },
    },
    handler: async (request, reply) => {
      const { filename, stream } = await deps.exports.download(request.body.token, request.id);
      return reply.type('application/zip').header('content-disposition', `attachment; filename="${filename}"`).send(stream as unknown as string); // a stream is sent as it is, never serialised
    },
  });
}
