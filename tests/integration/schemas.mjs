// schemas.mjs: validates answers against OpenAI's published OpenAPI schemas
// (fixtures/openai-schemas.json, extracted by tools/extract-openai-schemas.mjs).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const doc = JSON.parse(readFileSync(path.join(here, 'fixtures/openai-schemas.json'), 'utf8'));
doc.$id = 'openai';
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(doc);

// A union of event schemas told apart by `type` (ResponseStreamEvent): the member for a type.
function member(name, type) {
  const union = doc.$defs[name].anyOf ?? doc.$defs[name].oneOf ?? [];
  for (const m of union) {
    const ref = m.$ref?.replace('#/$defs/', '');
    if (ref && doc.$defs[ref]?.properties?.type?.enum?.includes(type)) return ref;
  }
  return null;
}

// Asserts `value` is a valid `name` (a schema of OpenAI's spec); the message lists why not.
// For an event union, the event must be one of its types and valid as that type.
export function assertSchema(name, value) {
  if (name.endsWith('StreamEvent')) {
    const m = member(name, value?.type);
    if (!m) throw new Error(`${JSON.stringify(value?.type)} is not an event type of ${name}`);
    name = m;
  }
  const validate = ajv.getSchema(`openai#/$defs/${name}`);
  if (!validate) throw new Error(`no schema ${name}`);
  if (!validate(value)) {
    const why = validate.errors
      .slice(0, 8)
      .map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`)
      .join('\n  ');
    throw new Error(`not a valid ${name}:\n  ${why}\nvalue: ${JSON.stringify(value).slice(0, 600)}`);
  }
}
