/**
 * Validators for the API. Bodies are validated strictly (no type coercion, unknown fields refused,
 * nothing stripped); query strings and path parameters are coerced from text, as they must be.
 * The same Ajv setup checks user-supplied JSON Schemas (action parameters, inquiry responses).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function make(coerce: boolean) {
  const ajv = new Ajv2020({
    allErrors: false,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    strict: false,
  });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv;
}

const strictAjv = make(false);
const coercingAjv = make(true);

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? strictAjv : coercingAjv;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};
