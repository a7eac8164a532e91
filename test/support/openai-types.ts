// OpenAI's published audio API, as the official Node SDK (openai on npm, generated from OpenAI's OpenAPI
// spec) types it: its interfaces read with the TypeScript compiler and reduced to what a JSON schema can
// say (kind, enum values, array items, object properties, required or not), so that earshot's OpenAPI
// document can be compared with it field by field.
import path from 'node:path';
import ts from 'typescript';
import { projectRoot } from '../../src/paths.ts';

export interface Shape {
  /** `file` is an upload (Uploadable); `union` holds several kinds (chunking_strategy: 'auto' or an object). */
  kinds: Set<'string' | 'number' | 'boolean' | 'file' | 'object' | 'array' | 'null'>;
  /** String literal values, when a string is one of a few. */
  enum?: Set<string>;
  items?: Shape;
  properties?: Map<string, { shape: Shape; required: boolean }>;
}

const audioDir = path.join(projectRoot, 'node_modules', 'openai', 'resources', 'audio');
export const SDK_SOURCES = {
  transcriptions: path.join(audioDir, 'transcriptions.d.ts'),
  translations: path.join(audioDir, 'translations.d.ts'),
};

/** Reads the SDK's audio types; `interfaceShape(file, name)` then describes one of them. */
export function openaiAudioTypes() {
  const program = ts.createProgram(Object.values(SDK_SOURCES), { strict: true, noEmit: true, skipLibCheck: true });
  const checker = program.getTypeChecker();

  /** A union's members, type parameters replaced by their constraints (response_format's ResponseFormat). */
  function membersOf(type: ts.Type): ts.Type[] {
    if (type.getFlags() & ts.TypeFlags.TypeParameter) {
      const constraint = checker.getBaseConstraintOfType(type);
      return constraint ? membersOf(constraint) : [];
    }
    // An upload is any of several things (File, a stream, a Response): one kind here.
    if (type.aliasSymbol?.name === 'Uploadable') return [type];
    return type.isUnion() ? type.types.flatMap(membersOf) : [type];
  }

  function shapeOf(type: ts.Type, depth = 0): Shape {
    const members = membersOf(type);
    const shape: Shape = { kinds: new Set() };
    const objects: ts.Type[] = [];
    for (const member of members) {
      const flags = member.getFlags();
      if (member.aliasSymbol?.name === 'Uploadable') {
        shape.kinds.add('file');
        continue;
      }
      if (flags & ts.TypeFlags.Undefined) continue;
      if (flags & ts.TypeFlags.Null) shape.kinds.add('null');
      else if (member.isStringLiteral()) {
        (shape.enum ??= new Set()).add(member.value);
        shape.kinds.add('string');
      } else if (flags & ts.TypeFlags.StringLike) shape.kinds.add('string');
      // (string & {}): any string, as the SDK spells "a known name or any other".
      else if (member.isIntersection() && member.types.some((part) => part.getFlags() & ts.TypeFlags.String))
        shape.kinds.add('string');
      else if (flags & ts.TypeFlags.NumberLike) shape.kinds.add('number');
      else if (flags & ts.TypeFlags.BooleanLike) shape.kinds.add('boolean');
      else if (checker.isArrayType(member)) {
        shape.kinds.add('array');
        const [item] = checker.getTypeArguments(member as ts.TypeReference);
        if (item) shape.items = shapeOf(item, depth + 1);
      } else objects.push(member);
    }
    // Any string at all: the literals were only suggestions.
    if (members.some((member) => member.getFlags() & ts.TypeFlags.String || member.isIntersection())) delete shape.enum;
    if (objects.length > 0) {
      shape.kinds.add('object');
      if (depth < 4) {
        shape.properties = new Map();
        for (const object of objects) {
          for (const property of checker.getPropertiesOfType(object)) {
            const declaration = property.valueDeclaration ?? property.declarations?.[0];
            if (!declaration) continue;
            shape.properties.set(property.name, {
              shape: shapeOf(checker.getTypeOfSymbolAtLocation(property, declaration), depth + 1),
              required: (property.getFlags() & ts.SymbolFlags.Optional) === 0,
            });
          }
        }
      }
    }
    return shape;
  }

  return {
    /** An exported interface of one of SDK_SOURCES, as an object shape. */
    interfaceShape(file: string, name: string): Shape {
      const source = program.getSourceFile(file);
      const module = source && checker.getSymbolAtLocation(source);
      const symbol = module && checker.getExportsOfModule(module).find((exported) => exported.name === name);
      if (!symbol) throw new Error(`${name} is not exported by ${file}`);
      return shapeOf(checker.getDeclaredTypeOfSymbol(symbol));
    },
  };
}

type JsonSchema = Record<string, unknown>;

/** The same reduction of a JSON schema of earshot's document ($refs resolved against `components`). */
export function schemaShape(schema: JsonSchema, components: Record<string, JsonSchema>, depth = 0): Shape {
  if (typeof schema.$ref === 'string') {
    const target = components[schema.$ref.replace('#/components/schemas/', '')];
    if (!target) throw new Error(`unresolved ${schema.$ref}`);
    return schemaShape(target, components, depth);
  }
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives) {
    const shapes = alternatives.map((alternative) => schemaShape(alternative, components, depth));
    return shapes.reduce((all, shape) => ({
      ...all,
      ...shape,
      kinds: new Set([...all.kinds, ...shape.kinds]),
      ...((all.enum ?? shape.enum) && { enum: new Set([...(all.enum ?? []), ...(shape.enum ?? [])]) }),
    }));
  }
  const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
  const shape: Shape = { kinds: new Set() };
  for (const type of types) {
    if (type === 'integer' || type === 'number') shape.kinds.add('number');
    else if (type === 'string') shape.kinds.add(schema.format === 'binary' ? 'file' : 'string');
    else if (type === 'boolean' || type === 'array' || type === 'object' || type === 'null') shape.kinds.add(type);
  }
  if (Array.isArray(schema.enum)) {
    const strings = schema.enum.filter((value): value is string => typeof value === 'string');
    if (strings.length > 0) shape.enum = new Set(strings);
  }
  if (schema.items) shape.items = schemaShape(schema.items as JsonSchema, components, depth + 1);
  if (schema.properties && depth < 4) {
    const required = new Set((schema.required as string[] | undefined) ?? []);
    shape.properties = new Map(
      Object.entries(schema.properties as Record<string, JsonSchema>).map(([name, property]) => [
        name,
        { shape: schemaShape(property, components, depth + 1), required: required.has(name) },
      ]),
    );
  }
  return shape;
}

/**
 * Where earshot's shape disagrees with OpenAI's, as readable lines (none: they agree). Every kind of
 * earshot's is one of OpenAI's; earshot's enum values are OpenAI's (it may serve fewer: `narrower` lists
 * the ones it leaves out on purpose); both sides' shared properties agree, recursively; what OpenAI
 * requires, earshot requires. Properties only one side has are returned for the caller to judge.
 */
export function compareShapes(
  where: string,
  ours: Shape,
  theirs: Shape,
  narrower: Record<string, readonly string[]> = {},
): { disagreements: string[]; onlyOurs: string[]; onlyTheirs: string[] } {
  const disagreements: string[] = [];
  const onlyOurs: string[] = [];
  const onlyTheirs: string[] = [];
  const ourKinds = [...ours.kinds].filter((kind) => kind !== 'null');
  const extra = ourKinds.filter((kind) => !theirs.kinds.has(kind));
  if (extra.length > 0)
    disagreements.push(`${where}: earshot has ${extra.join(', ')}, OpenAI ${[...theirs.kinds].join(', ')}`);
  if (ours.enum && theirs.enum) {
    const unknown = [...ours.enum].filter((value) => !theirs.enum!.has(value));
    if (unknown.length > 0) disagreements.push(`${where}: values ${unknown.join(', ')} are not OpenAI's`);
    const missing = [...theirs.enum].filter((value) => !ours.enum!.has(value) && !narrower[where]?.includes(value));
    if (missing.length > 0) disagreements.push(`${where}: OpenAI's values ${missing.join(', ')} are missing`);
  } else if (theirs.enum && !ours.enum && !theirs.kinds.has('object')) {
    // A plain string where OpenAI names the values: wider, which a client cannot notice.
  }
  if (ours.items && theirs.items) {
    const nested = compareShapes(`${where}[]`, ours.items, theirs.items, narrower);
    disagreements.push(...nested.disagreements);
    onlyOurs.push(...nested.onlyOurs);
    onlyTheirs.push(...nested.onlyTheirs);
  }
  if (ours.properties && theirs.properties) {
    for (const [name, property] of ours.properties) {
      const other = theirs.properties.get(name);
      if (!other) {
        onlyOurs.push(`${where}.${name}`);
        continue;
      }
      if (other.required && !property.required) disagreements.push(`${where}.${name}: OpenAI requires it`);
      const nested = compareShapes(`${where}.${name}`, property.shape, other.shape, narrower);
      disagreements.push(...nested.disagreements);
      onlyOurs.push(...nested.onlyOurs);
      onlyTheirs.push(...nested.onlyTheirs);
    }
    for (const name of theirs.properties.keys()) if (!ours.properties.has(name)) onlyTheirs.push(`${where}.${name}`);
  }
  return { disagreements, onlyOurs, onlyTheirs };
}
