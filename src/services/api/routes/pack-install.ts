/**
 * `POST /api/v1/packs/install`: installs (or upgrades) a pack from a directory on the server, a git
 * repository, or an uploaded `.tar.gz`. Everything is validated first; a pack with any problem
 * installs nothing and the answer (422) lists every problem with its file and line.
 */
import type { FastifyError } from 'fastify';
import { Type } from 'typebox';
import { AppError, badRequest } from '../../../domain/errors.ts';
import { type InstallSource, installPack } from '../../../packs/install.ts';
import { hasPermission } from '../auth.ts';
import { announceDefinitionsChanged } from '../definitions.ts';
import { Data } from '../http.ts';
import type { ApiApp } from '../server.ts';
import { Pack, RefsByKind } from './packs.ts';

const InstallBody = Type.Object(
  {
    source: Type.Union([Type.Literal('path'), Type.Literal('git')], {
      description:
        "'path': a directory on the server; 'git': a repository (or send the .tar.gz itself as the body)",
    }),
    path: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'For source path: the pack directory (pack.yaml at its root or in its single top folder). Relative ' +
          "paths are read from the server's working directory. With ATTUNE_PACK_PATHS set, it must lie inside one of those.",
      }),
    ),
    url: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description: 'For source git: https://, ssh://, git@host:path, git://, file:// or a local path',
      }),
    ),
    ref: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'For source git: a branch, tag or full commit id',
      }),
    ),
  },
  { additionalProperties: false },
);
const InstallQuery = Type.Object(
  {
    force: Type.Optional(
      Type.Boolean({
        description:
          'Upgrade even when rules or sensors of other packs use actions or triggers the new version drops ' +
          '(they are disabled)',
      }),
    ),
  },
  { additionalProperties: false },
);
const Problem = Type.Object({
  file: Type.Union([Type.String(), Type.Null()]),
  line: Type.Union([Type.Integer(), Type.Null()]),
  path: Type.String(),
  message: Type.String(),
});
const InstallResult = Type.Object({
  pack: Pack,
  operation: Type.Union([Type.Literal('installed'), Type.Literal('updated')]),
  previous_version: Type.Union([Type.String(), Type.Null()]),
  changes: Type.Object(
    {
      created: RefsByKind,
      updated: RefsByKind,
      removed: RefsByKind,
      unchanged: Type.Integer({ description: 'Entities that were already as the pack defines them' }),
    },
    { description: 'Refs of the entities created, updated and removed by this install' },
  ),
  disabled: Type.Object(
    { rules: Type.Array(Type.String()), sensors: Type.Array(Type.String()) },
    {
      description:
        'Rules and sensors of other packs disabled because the new version dropped what they use (force)',
    },
  ),
  warnings: Type.Array(Problem, { description: 'Things worth knowing that did not stop the install' }),
});

/** Media types accepted as an uploaded archive. */
export const ARCHIVE_TYPES = [
  'application/gzip',
  'application/x-gzip',
  'application/x-tar',
  'application/octet-stream',
];
const Binary = { format: 'binary', description: 'A .tar.gz (or .tar) of the pack' };

export function registerPackInstallRoutes(app: ApiApp): void {
  // an encapsulated scope: the archive parser (with its own size limit) serves this route only
  app.register(async (scope: ApiApp) => {
    const limit = app.ctx.config.packUploadLimit;
    scope.removeContentTypeParser('text/plain');
    scope.addContentTypeParser(ARCHIVE_TYPES, { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) =>
      done(null, body),
    );
    scope.setErrorHandler((err: FastifyError, req) => {
      if (
        err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' &&
        !String(req.headers['content-type']).startsWith('application/json')
      )
        throw new AppError(
          'PAYLOAD_TOO_LARGE',
          `the pack archive is larger than the upload limit of ${limit} bytes (ATTUNE_PACK_UPLOAD_LIMIT)`,
          { limit },
        );
      throw err;
    });

    scope.post(
      '/api/v1/packs/install',
      {
        config: { permission: ['packs', 'create'] },
        schema: {
          tags: ['packs'],
          summary: 'Install or upgrade a pack',
          description:
            'From a server directory (`{"source": "path", "path": …}`), a git repository (`{"source": "git", ' +
            '"url": …, "ref": …}`), or an uploaded archive (the .tar.gz as the body, content-type ' +
            'application/gzip or application/octet-stream). Everything is validated first: a pack with any ' +
            'problem installs nothing and the 422 lists every problem (`details: [{file, line, path, message}]`). ' +
            'All entities are registered in one transaction; an upgrade updates what changed and removes what ' +
            "the new version no longer has (replacing an installed pack also needs the 'update' right). " +
            '201 for a new pack, 200 for an upgrade.',
          querystring: InstallQuery,
          body: {
            content: {
              'application/json': { schema: InstallBody },
              ...Object.fromEntries(ARCHIVE_TYPES.map((t) => [t, { schema: Binary }])),
            },
          },
          response: {
            200: Data(InstallResult),
            201: Data(InstallResult),
            400: { $ref: 'ErrorBody#' },
            401: { $ref: 'ErrorBody#' },
            403: { $ref: 'ErrorBody#' },
            409: { $ref: 'ErrorBody#' },
            413: { $ref: 'ErrorBody#' },
            415: { $ref: 'ErrorBody#' },
            422: { $ref: 'ErrorBody#' },
          },
        },
      },
      async (req, reply) => {
        const body: unknown = req.body;
        let source: InstallSource;
        if (Buffer.isBuffer(body)) {
          if (!body.length) throw badRequest('the uploaded archive is empty');
          source = { type: 'upload', data: body };
        } else if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
          const b = body as { source: 'path' | 'git'; path?: string; url?: string; ref?: string };
          const only = (field: string, src: string) =>
            badRequest(`'${field}' is only for source '${src}'`, { field });
          if (b.source === 'path') {
            if (b.url !== undefined) throw only('url', 'git');
            if (b.ref !== undefined) throw only('ref', 'git');
            if (b.path === undefined)
              throw badRequest("source 'path' needs 'path' (a directory on the server)", { field: 'path' });
            source = { type: 'path', path: b.path };
          } else {
            if (b.path !== undefined) throw only('path', 'path');
            if (b.url === undefined) throw badRequest("source 'git' needs 'url'", { field: 'url' });
            source = { type: 'git', url: b.url, ref: b.ref };
          }
        } else throw badRequest('send {"source": "path"|"git", …} as JSON, or the pack archive itself');

        const outcome = await installPack(app.ctx, source, {
          force: req.query.force ?? false,
          actor: req.principal?.login ?? null,
          mayUpgrade: hasPermission(req, 'packs', 'update'),
          requestId: req.id,
          ip: req.ip,
        });
        announceDefinitionsChanged(app.ctx, { resource: 'packs', refs: [outcome.pack.ref] });
        return reply.code(outcome.operation === 'installed' ? 201 : 200).send({ data: outcome });
      },
    );
  });
}
