// Extracts the schemas the integration tests validate answers against from OpenAI's
// published OpenAPI document (github.com/openai/openai-openapi, MIT license) into
// fixtures/openai-schemas.json: the named roots and every schema they reference.
//   node tools/extract-openai-schemas.mjs /path/to/openapi.json COMMIT > fixtures/openai-schemas.json
import { readFileSync } from 'node:fs';

const [file, commit] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(file, 'utf8'));
const all = spec.components.schemas;
const roots = [
  'Response',
  'ResponseStreamEvent',
  'CreateChatCompletionResponse',
  'CreateChatCompletionStreamResponse',
  'CreateCompletionResponse',
  'Model',
  'ListModelsResponse',
  'ErrorResponse',
];
const keep = {};
const visit = (name) => {
  if (keep[name] || !all[name]) return;
  keep[name] = all[name];
  JSON.stringify(all[name], (k, v) => {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) visit(v.slice(21));
    return v;
  });
};
roots.forEach(visit);
// Draft 2019-09's recursive references (one filter schema uses them) as plain references to
// the schema they sit in, which is what they mean there.
for (const [name, schema] of Object.entries(keep)) {
  keep[name] = JSON.parse(
    JSON.stringify(schema, (k, v) => (k === '$recursiveAnchor' ? undefined : v)).replaceAll(
      '"$recursiveRef":"#"',
      `"$ref":"#/components/schemas/${name}"`,
    ),
  );
}
// OpenAPI 3.0's `nullable` as plain JSON Schema: the schema, or null (its enum included).
const nullable = (v) => {
  if (Array.isArray(v)) return v.map(nullable);
  if (!v || typeof v !== 'object') return v;
  const out = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, nullable(x)]));
  if (out.nullable === true && out.type === undefined) {
    delete out.nullable;
    return { anyOf: [out, { type: 'null' }] };
  }
  if (out.nullable === true) {  // as OpenAPI means it: null is allowed, enum or not
    delete out.nullable;
    out.type = [].concat(out.type, 'null');
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
};
for (const name of Object.keys(keep)) keep[name] = nullable(keep[name]);
// References point into this file's $defs.
const text = JSON.stringify(keep).replaceAll('#/components/schemas/', '#/$defs/');
process.stdout.write(
  JSON.stringify(
    {
      $comment: `From github.com/openai/openai-openapi (MIT, Copyright (c) OpenAI) at ${commit}, openapi ${spec.openapi}; extracted by tools/extract-openai-schemas.mjs`,
      $defs: JSON.parse(text),
    },
    null,
    0,
  ) + '\n',
);
