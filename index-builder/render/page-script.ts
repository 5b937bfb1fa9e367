/**
 * The pages' scripts, as the exact text the pages inline: the pages' CSP allows an inline script only by the
 * hash of its text (html.ts, serving.ts), so each is one literal string, the same bytes in every process that
 * renders a page or builds the policy (never a function's `toString`, which a bundler would reshape).
 *
 * The home page searches `search.json`'s rows (published, signed, one row per plugin; fetched in the page's
 * compact form, home-search.json, where the registry publishes it) in the browser and shows one page of hits
 * at a time; its search state (query, filters, page) lives in the URL, so a search is a link and back and
 * forward step through searches. A plugin page with many versions shows one page of its version
 * table; the other pages wait, already rendered and escaped by the server, as `<noscript>` text.
 */

import {
  LOOK_ALIKES_SHOWN,
  MAX_FILTER_LENGTH,
  MAX_QUERY_LENGTH,
  MAX_SEARCH_TERMS,
  SEARCH_FIELDS,
  SEARCH_FILTER_VALUES,
} from '../search.ts';

/** Plugins per page of the home page's results (the server renders the first, the script the others). */
export const HOME_PAGE_SIZE = 50;
/** Chips (providers, capabilities, keywords) a result shows; the rest are counted ("+3"). */
export const RESULT_CHIPS = 6;
/**
 * What begins a result's look-alike flag, on the page as in `plugindex search` (cli/commands/search.ts
 * `lookAlikeWarning`): "looks like: awscost (other owner)".
 */
export const LOOK_ALIKE_LEAD = 'looks like: ';
/** Look-alikes a flag names (search.ts), here for the pages' script and html.ts. */
export { LOOK_ALIKES_SHOWN };
/** Versions per page of a plugin page's version table. */
export const VERSIONS_PAGE_SIZE = 20;
/**
 * What a plugin with no stable release shows where its version would be (its `latest_version` is null), on
 * its own page and in the home page's list, served or built by the script. Not "prerelease only": a row
 * cannot tell a plugin of prereleases only from one whose every stable version was yanked.
 */
export const NO_STABLE_RELEASE = 'no stable release';

/**
 * The search ranking (`searchPlugins` in index-builder/search.ts, the client's and `GET /search`'s) for one registry, in the browser's
 * JavaScript: `prepare(rows)` (or `prepareRow` for each) once per search.json, then `rank(prepared, query)` gives the rows best first.
 * Tiers: exact name, name prefix, name or display-name substring, keyword, description, a name one or two
 * edits away (terms of 4 to 7 characters: 1, longer: 2, against the name and each '-'-separated part);
 * words and rows compared lowercased, then in Unicode NFC (`foldText`: a query in NFD finds a row in NFC);
 * every term must match, a word given twice counted once; an entry ranks by its weakest term; ties by name;
 * the type, provider and capability filters are exact and case-insensitive. With one registry the client's
 * priority and registry tie-breaks never apply. The same order is checked against `searchPlugins` in test/index-builder/render/page-script.test.ts.
 * (The page cannot run index-builder/search.ts itself: the script must be fixed text for its CSP hash, and
 * a bundled function's text changes with the bundler; the test is what keeps the two one ranking.)
 */
export const RANKING_SOURCE = `
function boundedLevenshtein(a, b, bound) {
  if (Math.abs(a.length - b.length) > bound) return bound + 1;
  var previous = [], i, j;
  for (j = 0; j <= b.length; j++) previous.push(j);
  for (i = 1; i <= a.length; i++) {
    var current = [i], rowMin = i;
    for (j = 1; j <= b.length; j++) {
      var cell = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      current.push(cell);
      if (cell < rowMin) rowMin = cell;
    }
    if (rowMin > bound) return bound + 1;
    previous = current;
  }
  return Math.min(previous[b.length], bound + 1);
}
function typoBound(term) { return term.length < 4 ? 0 : term.length <= 7 ? 1 : 2; }
// foldText: lowercased, then NFC, so "café" typed composed or decomposed is one word (NFC last: lowercasing
// can leave a sequence that composes).
function fold(text) { return text.toLowerCase().normalize('NFC'); }
function foldAll(values) {
  // The same array when nothing changes (most lists are folded already, and shared between rows).
  for (var i = 0; i < values.length; i++)
    if (values[i] !== fold(values[i])) return values.map(fold);
  return values;
}
function prepareRow(row) {
  var name = fold(row.name);
  return {
    row: row, name: name, parts: [name].concat(name.split('-')),
    display: row.display_name ? fold(row.display_name) : '',
    description: row.description ? fold(row.description) : '',
    keywords: foldAll(row.keywords), providers: foldAll(row.providers), capabilities: foldAll(row.capabilities),
    type: fold(row.plugin_type)
  };
}
function prepare(rows) { return rows.map(prepareRow); }
function termTier(term, p) {
  if (p.name === term) return 0;
  if (p.name.indexOf(term) === 0) return 1;
  if (p.name.indexOf(term) >= 0 || p.display.indexOf(term) >= 0) return 2;
  if (p.keywords.some(function (k) { return k.indexOf(term) >= 0; })) return 3;
  if (p.description.indexOf(term) >= 0) return 4;
  var bound = typoBound(term);
  if (bound > 0 && p.parts.some(function (part) { return boundedLevenshtein(term, part, bound) <= bound; })) return 5;
  return -1;
}
function rank(prepared, query) {
  // Each word once, in the order first met (searchTerms): a word twice asks nothing more, and each is a pass.
  var terms = Array.from(new Set(fold(query.q).split(/\\s+/).filter(function (t) { return t !== ''; })));
  var type = fold(query.type), provider = fold(query.provider), capability = fold(query.capability);
  var hits = [];
  for (var i = 0; i < prepared.length; i++) {
    var p = prepared[i];
    if (type && p.type !== type) continue;
    if (provider && p.providers.indexOf(provider) < 0) continue;
    if (capability && p.capabilities.indexOf(capability) < 0) continue;
    var tier = 6;
    if (terms.length > 0) {
      tier = 0;
      for (var t = 0; t < terms.length && tier >= 0; t++) {
        var found = termTier(terms[t], p);
        tier = found < 0 ? -1 : Math.max(tier, found);
      }
      if (tier < 0) continue;
    }
    hits.push({ tier: tier, row: p.row });
  }
  hits.sort(function (a, b) {
    return a.tier - b.tier || (a.row.name < b.row.name ? -1 : a.row.name > b.row.name ? 1 : 0);
  });
  return hits.map(function (h) { return h.row; });
}
`;

/**
 * `readParameters(pairs)`: `readSearchParameters` (index-builder/search.ts, the rule `GET /search` and
 * `plugindex search` read a search's parameters by) in the browser's JavaScript, over `[name, value]` pairs
 * of `q`, `type`, `provider`, `capability` in the order given: `{ ok: true, query }` or `{ ok: false,
 * problem }` with the same code, parameter, message and expected text. Checked against the module's on a
 * table of cases and 4,000 generated ones in test/index-builder/render/page-script.test.ts (fixed text for
 * the CSP, as the ranking). `readLink(search)`: a link's query string decoded as `GET /search` decodes it (a
 * value of those four that is not percent-encoded UTF-8 is its `SEARCH_PARAMETER_MALFORMED`, with its
 * message), then `readParameters`; checked against `parseSearchQuery` in the same test.
 * Needs `fold` (RANKING_SOURCE).
 */
export const PARAMETERS_SOURCE = `
var SEARCH_FIELDS = ${JSON.stringify(SEARCH_FIELDS)}, FILTER_VALUES = ${JSON.stringify(SEARCH_FILTER_VALUES)};
function readParameters(pairs) {
  var seen = {}, query = { q: '' };
  function refuse(code, parameter, message, expected) {
    return { ok: false, problem: { code: code, parameter: parameter, message: message, expected: expected } };
  }
  for (var i = 0; i < pairs.length; i++) {
    var parameter = pairs[i][0], value = parameter === 'q' ? pairs[i][1] : pairs[i][1].trim();
    if (seen[parameter]) return refuse('SEARCH_PARAMETER_REPEATED', parameter, parameter + ' is given more than once', parameter + ' at most once');
    seen[parameter] = true;
    var max = parameter === 'q' ? ${MAX_QUERY_LENGTH} : ${MAX_FILTER_LENGTH}, length = Array.from(value.normalize('NFC')).length;
    if (length > max) return refuse('SEARCH_PARAMETER_TOO_LONG', parameter, parameter + ' is ' + length + ' characters long', 'at most ' + max + ' characters');
    if (/[\\u0000-\\u001f\\u007f]/.test(value)) return refuse('SEARCH_PARAMETER_INVALID', parameter, parameter + ' holds a control character', 'text without control characters');
    if (parameter === 'q') {
      var words = new Set(fold(value).split(/\\s+/).filter(function (t) { return t !== ''; })).size;
      if (words > ${MAX_SEARCH_TERMS}) return refuse('SEARCH_PARAMETER_INVALID', 'q', 'q holds ' + words + ' distinct words', 'at most ${MAX_SEARCH_TERMS} distinct words');
      query.q = value;
      continue;
    }
    if (value === '') continue;
    var folded = fold(value), allowed = FILTER_VALUES[parameter];
    if (allowed.indexOf(folded) < 0) return refuse('SEARCH_PARAMETER_INVALID', parameter, JSON.stringify(folded) + ' is not a ' + parameter + ' a plugin can have', 'one of ' + allowed.join(', '));
    query[parameter] = folded;
  }
  return { ok: true, query: query };
}
// A link's query string (location.search) read as GET /search reads it: form-decoded strictly, so a value of
// q, type, provider or capability that is not percent-encoded UTF-8 ('%ff', '%E0%A4%A', '100%') is refused
// with the endpoint's SEARCH_PARAMETER_MALFORMED, not searched as the U+FFFD URLSearchParams would make of
// it; then readParameters. Other names (page, one the page does not know, one that cannot be decoded) are
// no search's and left to the page.
function readLink(search) {
  var pieces = search.replace(/^\\?/, '').split('&'), pairs = [];
  function decode(text) {
    try { return decodeURIComponent(text.replace(/\\+/g, ' ')); } catch (e) { return undefined; }
  }
  for (var i = 0; i < pieces.length; i++) {
    if (pieces[i] === '') continue;
    var equals = pieces[i].indexOf('='), name = decode(equals < 0 ? pieces[i] : pieces[i].slice(0, equals));
    if (SEARCH_FIELDS.indexOf(name) < 0) continue;
    var value = decode(equals < 0 ? '' : pieces[i].slice(equals + 1));
    if (value === undefined) return { ok: false, problem: { code: 'SEARCH_PARAMETER_MALFORMED', parameter: name,
      message: 'the value of ' + name + ' is not percent-encoded UTF-8 text', expected: 'percent-encoded UTF-8 text' } };
    pairs.push([name, value]);
  }
  return readParameters(pairs);
}
`;

/**
 * `lookAlikes(rows)`: `lookAlikesOf` (index-builder/search.ts, the flags `plugindex search` prints and
 * `GET /search` answers as `look_alikes`) in the browser's JavaScript, over search.json's rows, which carry
 * their owners: per row, the other rows whose name has its skeleton (`nameSkeleton`, name-skeleton.ts: no
 * case, no '-', '_' or '.', '0' read as 'o' and '1' as 'l') and whose owners are not the same keys, by name;
 * undefined for none, and for a row that does not say its owners. One pass grouping by skeleton, run once
 * when search.json's rows arrive, never per keystroke (home-search.json carries the flags, made by the
 * server; a flag a search.json row brings itself is not taken). Checked against `lookAlikesOf` on a table
 * and 2,000 generated registries in test/index-builder/render/page-script.test.ts (fixed text for the CSP,
 * as the ranking). A row's owners are compared as one text (`handsOf`: the set of them, uppercased, sorted,
 * as JSON, so no owner's text can pass for two; `[]` for none, which is no one's hands); a group of one
 * compares nothing; `others.sort()` is code-unit order, as `lookAlikesOf` sorts. Comments stay out of this
 * text: the publish bundle carries it (html.ts renders the home page at each commit), within its bound.
 */
export const LOOK_ALIKES_SOURCE = `
function skeleton(name) { return name.toLowerCase().replace(/[-_.]/g, '').replace(/0/g, 'o').replace(/1/g, 'l'); }
function handsOf(o) {
  return Array.isArray(o) && o.every(function (x) { return typeof x === 'string'; }) ?
    JSON.stringify(Array.from(new Set(o.map(function (x) { return x.toUpperCase(); }))).sort()) : null;
}
function lookAlikes(rows) {
  var groups = new Map(), flags = new Array(rows.length);
  rows.forEach(function (row, i) {
    var key = skeleton(row.name), group = groups.get(key);
    if (group) group.push(i); else groups.set(key, [i]);
  });
  groups.forEach(function (group) {
    if (group.length < 2) return;
    var hands = group.map(function (j) { return handsOf(rows[j].owners); });
    group.forEach(function (j, at) {
      var others = group.filter(function (k, other) {
        return hands[at] && hands[other] && rows[k].name !== rows[j].name && (hands[at] !== hands[other] || hands[at] === '[]');
      }).map(function (k) { return rows[k].name; });
      if (others.length > 0) flags[j] = others.sort();
    });
  });
  return flags;
}
`;

/**
 * `unpack(doc)`: home-search.json (render/home-search.ts, the page's compact form of search.json's rows)
 * read back into rows of search.json's shape, exactly, but for their owners, and with the `look_alikes` the
 * server made for them, where a search hit has them: the first ten, and past ten `look_alikes_more`, the
 * count of the rest, which `item` adds to its "and N more" (test/index-builder/render/home-search.test.ts).
 */
export const UNPACK_SOURCE = `
function unpack(doc) {
  var s = doc.strings, l = doc.lists;
  return doc.plugins.map(function (p) {
    var row = { name: p[0] };
    if (p[1]) row.display_name = p[1];
    if (p[2]) row.description = p[2];
    row.latest_version = p[3]; row.plugin_type = s[p[4]];
    row.providers = l[p[5]]; row.capabilities = l[p[6]]; row.keywords = l[p[7]];
    if (p[8]) row.deprecated = true;
    if (p[9]) row.look_alikes = p[9];
    if (p[10]) row.look_alikes_more = p[10];
    return row;
  });
}
`;

/**
 * The home page: searches its rows as you type, one page of hits at a time, the state in the URL. The rows
 * are home-search.json (render/home-search.ts: search.json's rows in a third of the bytes) when the page
 * names it (`data-search`), else, or when that cannot be had, search.json. Until they have arrived it pages
 * by the count the server wrote (`data-total`); when they come from the generation the page was rendered
 * with (`data-generated`), the list as served is already their first page and is kept, not built again. It
 * marks the list `data-ready` once it can search; the rows are folded for searching (lowercased, then NFC)
 * in slices of 500 in the background (no long task), or at once when a search comes first. A result whose name
 * reads as another owner's plugin says so in its row, in words ("looks like: awscost (other owner)", as
 * `plugindex search` prints it): home-search.json carries the flags, and search.json's rows, which carry
 * their owners instead, are flagged once on arrival (`lookAlikes`). A type in the URL is read in any
 * case, and one the select does not list still filters (nothing matches it). A query of more distinct words
than `GET /search` takes (`MAX_SEARCH_TERMS`) is answered with that, not searched. DOM calls only (textContent, never
 * markup from data). Typing pushes one history entry when a search starts and replaces it while the words
 * change; a filter or a page pushes one each; back and forward re-read the URL. A URL naming a page past the
 * last, or a provider or capability with spaces around it, is replaced (never pushed) by the one of what is
 * shown: the last page, the filter trimmed as the field trims it (GET /search refuses it with spaces).
 */
export const HOME_SCRIPT = `
(function () {
  ${RANKING_SOURCE}
  ${PARAMETERS_SOURCE}
  ${UNPACK_SOURCE}
  ${LOOK_ALIKES_SOURCE}
  var PAGE = ${HOME_PAGE_SIZE}, CHIPS = ${RESULT_CHIPS};
  function $(id) { return document.getElementById(id); }
  var q = $('q'), type = $('type'), provider = $('provider'), capability = $('capability'),
      list = $('results'), count = $('count'), pager = $('pager'), prev = $('prev'), next = $('next'), at = $('page-at');
  var rows = null, prepared = [], ranked = null, rankedFor = '', page = 1, typing = false, asked = '', linkProblem = null;
  var total = parseInt(list.getAttribute('data-total') || '', 10);
  // The list as served: the first page of the rows of search.json of this generation. While it is shown
  // and the rows are of the same generation, it is already what the rows would render.
  var served = list.getAttribute('data-generated');
  // The option a link's type got when the select lists none for it (see selectType).
  var unlisted = null;
  // A link may name its type in any case (GET /search reads it so), or one the select does not list: set
  // as it is, the select would take '' and the page would list every plugin without a word. Lowercased, and
  // given an option of its own when none is listed, it filters as asked (nothing matches an unknown type)
  // and the URL keeps it.
  function selectType(value) {
    value = value.toLowerCase();
    if (unlisted) { unlisted.remove(); unlisted = null; }
    if (value && !Array.from(type.options).some(function (o) { return o.value === value; })) {
      unlisted = el('option', '', value); unlisted.value = value; type.append(unlisted);
    }
    type.value = value;
  }
  function read() {
    var p = new URLSearchParams(location.search);
    // A filter is one word of the schema: spaces around it are no part of it (GET /search refuses them, 400),
    // so a link's are dropped as a field's are, and settle() takes them out of the URL.
    q.value = p.get('q') || ''; selectType((p.get('type') || '').trim()); provider.value = (p.get('provider') || '').trim();
    capability.value = (p.get('capability') || '').trim();
    // The URL's own parameters judged as GET /search judges them: a fault the fields cannot show (a filter
    // given twice, a q with a line feed the field drops) is still the link's, and told until a field changes.
    // A value that cannot be decoded (?provider=%ff) is refused as it is, not read as U+FFFD (readLink).
    var read = readLink(location.search);
    linkProblem = read.ok ? null : read.problem;
    page = Math.max(1, parseInt(p.get('page') || '1', 10) || 1);
    asked = JSON.stringify(query());
  }
  function query() {
    return { q: q.value, type: type.value, provider: provider.value.trim(), capability: capability.value.trim() };
  }
  function urlOf(s, n) {
    var p = new URLSearchParams();
    if (s.q.trim()) p.set('q', s.q);
    if (s.type) p.set('type', s.type);
    if (s.provider) p.set('provider', s.provider);
    if (s.capability) p.set('capability', s.capability);
    if (n > 1) p.set('page', String(n));
    var text = p.toString();
    return text ? '?' + text : location.pathname;
  }
  // The URL says what is shown: a page past the last (?page=999) is the last, a page that is no number the
  // first, and a filter without its spaces. Replaced in place, not pushed: back and forward still step
  // through what was asked, each entry now naming what it showed. Other parameters (a type in its own case,
  // one the page does not know) are kept as they were.
  function settle() {
    var p = new URLSearchParams(location.search), s = query();
    if ((p.get('page') || '1') === String(page) && (p.get('provider') || '') === s.provider &&
        (p.get('capability') || '') === s.capability) return;
    if (page > 1) p.set('page', String(page)); else p.delete('page');
    if (s.provider) p.set('provider', s.provider); else p.delete('provider');
    if (s.capability) p.set('capability', s.capability); else p.delete('capability');
    var text = p.toString();
    history.replaceState(history.state, '', (text ? '?' + text : location.pathname) + location.hash);
  }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text) e.textContent = text; return e; }
  function item(p) {
    var li = el('li', 'plugin');
    li.dataset.name = p.name;
    var a = el('a', 'name', p.name);
    a.href = 'plugins/' + encodeURIComponent(p.name) + '/index.html';
    li.append(a, ' ', el('span', 'version muted', p.latest_version ? p.latest_version : ${JSON.stringify(NO_STABLE_RELEASE)}), ' ', el('span', 'badge', p.plugin_type));
    if (p.deprecated) li.append(' ', el('span', 'badge deprecated', 'deprecated'));
    var alike = p.look_alikes;
    if (alike) {
      var more = (p.look_alikes_more || 0) + Math.max(0, alike.length - ${LOOK_ALIKES_SHOWN});
      alike = el('div', 'look-alike', ${JSON.stringify(LOOK_ALIKE_LEAD)} + alike.slice(0, ${LOOK_ALIKES_SHOWN}).join(', ') + (more > 0 ? ' and ' + more + ' more' : '') + ' (other owner' + (alike.length + more > 1 ? 's)' : ')'));
      alike.setAttribute('role', 'note');
      li.append(alike);
    }
    if (p.display_name) li.append(el('div', 'display-name', p.display_name));
    if (p.description) li.append(el('div', 'description muted', p.description));
    var chips = el('ul', 'chips'), all = Array.from(new Set(p.providers.concat(p.capabilities, p.keywords)));
    all.slice(0, CHIPS).forEach(function (c) { chips.append(el('li', '', c)); });
    if (all.length > CHIPS) chips.append(el('li', 'more', '+' + (all.length - CHIPS)));
    li.append(chips);
    return li;
  }
  // Before search.json arrives: the first page and the pager from the server's count, so the list can be
  // paged at once; a search, or a later page, waits for the rows.
  function early() {
    var s = query(), searching = !!(s.q.trim() || s.type || s.provider || s.capability);
    if (searching || !(total >= 0)) {
      pager.hidden = true;
      if (searching) { list.hidden = true; count.textContent = 'searching…'; }
      return;
    }
    var pages = Math.max(1, Math.ceil(total / PAGE));
    if (page > pages) page = pages;
    list.hidden = page > 1;
    count.textContent = page > 1 ? 'loading…' : total + ' of ' + total + ' plugins';
    at.textContent = 'page ' + page + ' of ' + pages;
    prev.hidden = page <= 1; next.hidden = page >= pages;
    prev.href = urlOf(s, page - 1); next.href = urlOf(s, page + 1);
    pager.hidden = false;
    settle();
  }
  // What GET /search would refuse (readParameters, its rule) is told, not searched: a type, provider or
  // capability no plugin can have (it matched nothing, where the endpoint and plugindex search refuse it),
  // and more distinct words than it takes (MAX_SEARCH_TERMS: each is one more pass over every row, and a
  // link of 460 words each within a typo of a common name kept a tab of 10,000 plugins busy for 1.8 s).
  function problemOf(s) {
    if (linkProblem) return linkProblem;
    var read = readParameters([['q', s.q], ['type', s.type], ['provider', s.provider], ['capability', s.capability]]);
    return read.ok ? null : read.problem;
  }
  function render() {
    if (!rows) return early();
    var s = query(), key = JSON.stringify(s), problem = problemOf(s);
    if (problem) {
      list.replaceChildren(); served = null; list.hidden = false; pager.hidden = true;
      count.textContent = problem.message + ': expected ' + problem.expected;
      list.setAttribute('data-ready', '');
      return;
    }
    if (key !== rankedFor) {
      // No words and no filter: every plugin by name, which rows already are (sorted once, on arrival).
      if (!s.q.trim() && !s.type && !s.provider && !s.capability) ranked = rows;
      else ranked = rank(preparedRows(), s);
      rankedFor = key;
    }
    var pages = Math.max(1, Math.ceil(ranked.length / PAGE));
    if (page > pages) page = pages;
    if (!(served && ranked === rows && page === 1 && !list.hidden)) {
      list.replaceChildren.apply(list, ranked.slice((page - 1) * PAGE, page * PAGE).map(item));
      served = null;
    }
    list.hidden = false;
    count.textContent = ranked.length + ' of ' + rows.length + ' plugins';
    at.textContent = 'page ' + page + ' of ' + pages;
    prev.hidden = page <= 1; next.hidden = page >= pages;
    prev.href = urlOf(s, page - 1); next.href = urlOf(s, page + 1);
    pager.hidden = false;
    list.setAttribute('data-ready', '');
    settle();
  }
  function go(push) {
    // The fields are the search now, and the URL is written from them.
    linkProblem = null;
    asked = JSON.stringify(query());
    var url = urlOf(query(), page);
    if (url !== (location.search || location.pathname)) {
      if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
    }
    render();
  }
  // A new search starts at page 1; an event that changes no field is none (Chromium also fires change on a
  // select that loses focus after a scripted change: a click on next must not be taken back to page 1).
  function changed() { return JSON.stringify(query()) !== asked; }
  function typed() { if (!changed()) return; page = 1; go(!typing); typing = true; }
  [q, provider, capability].forEach(function (input) { input.addEventListener('input', typed); });
  type.addEventListener('change', function () { if (!changed()) return; typing = false; page = 1; go(true); });
  var form = $('search');
  // Shown only where it works: without script the page hides it.
  form.hidden = false;
  form.addEventListener('submit', function (e) { e.preventDefault(); typing = false; });
  [prev, next].forEach(function (link, i) {
    link.addEventListener('click', function (e) {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault(); typing = false; page += i === 0 ? -1 : 1; go(true);
      list.scrollIntoView({ block: 'nearest' });
    });
  });
  window.addEventListener('popstate', function () { typing = false; read(); render(); });
  read();
  // A search or a later page in the URL: the server's first page is not its answer, so it waits hidden.
  render();
  // Folded for searching (lowercased, NFC): a slice at a time in the background, so no task is long; the rest at once
  // when a search comes first.
  function preparedRows() {
    while (prepared.length < rows.length) prepared.push(prepareRow(rows[prepared.length]));
    return prepared;
  }
  function prepareSome() {
    var end = Math.min(rows.length, prepared.length + 500);
    while (prepared.length < end) prepared.push(prepareRow(rows[prepared.length]));
    if (prepared.length < rows.length) setTimeout(prepareSome, 0);
  }
  function load(url) {
    return fetch(url).then(function (r) {
      if (!r.ok) throw new Error(url + ': ' + r.status);
      return r.json();
    });
  }
  function arrived(got) {
    var found = got.rows;
    if (served !== got.doc.generated) served = null;
    // By name, as published; sorted here only if a document is not.
    for (var i = 1; i < found.length; i++) {
      if (!(found[i - 1].name < found[i].name)) {
        found = found.slice().sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
        break;
      }
    }
    rows = found;
    render();
    setTimeout(prepareSome, 0);
  }
  function fromSearchJson() {
    return load('search.json').then(function (doc) {
      var found = doc.plugins || [], flags = lookAlikes(found);
      found.forEach(function (row, i) { row.look_alikes = flags[i]; });
      return { doc: doc, rows: found };
    });
  }
  // The page names its compact rows when the registry publishes them (preloaded by the page's head, the
  // same request, so fetched once); search.json, signed for clients, holds the same rows and is the fallback.
  var compact = list.getAttribute('data-search');
  (compact ? load(compact).then(function (doc) { return { doc: doc, rows: unpack(doc) }; }).catch(fromSearchJson) : fromSearchJson())
    .then(arrived)
    .catch(function () { count.textContent = 'could not load search.json'; list.hidden = false; pager.hidden = true; });
})();
`;

/**
 * A plugin page with more versions than one page: shows the page `?versions=N` names (else the first); page
 * 1 is the table as served, the others are the text of their `<noscript>` (raw text while script runs),
 * parsed when first shown: the server's own escaped markup, never data from elsewhere, parsed inert
 * (DOMParser runs no script, and the CSP allows none but these). Back and forward re-read the URL.
 */
export const VERSIONS_SCRIPT = `
(function () {
  var body = document.getElementById('version-rows'), pager = document.getElementById('versions-pager');
  var prev = document.getElementById('versions-prev'), next = document.getElementById('versions-next'),
      at = document.getElementById('versions-at');
  var later = document.querySelectorAll('noscript.versions-page'), pages = [Array.from(body.childNodes)], shown = 1;
  var count = later.length + 1;
  function rows(n) {
    if (!pages[n - 1]) {
      var doc = new DOMParser().parseFromString(later[n - 2].textContent, 'text/html');
      pages[n - 1] = Array.from(doc.querySelector('tbody').childNodes);
    }
    return pages[n - 1];
  }
  function wanted() {
    var n = parseInt(new URLSearchParams(location.search).get('versions') || '1', 10) || 1;
    return Math.min(Math.max(1, n), count);
  }
  function urlOf(n) {
    var p = new URLSearchParams(location.search);
    if (n > 1) p.set('versions', String(n)); else p.delete('versions');
    var text = p.toString();
    return (text ? '?' + text : location.pathname) + '#versions';
  }
  function show(n) {
    if (n !== shown) body.replaceChildren.apply(body, rows(n));
    shown = n;
    at.textContent = 'page ' + n + ' of ' + count;
    prev.hidden = n <= 1; next.hidden = n >= count;
    prev.href = urlOf(n - 1); next.href = urlOf(n + 1);
    pager.hidden = false;
  }
  [prev, next].forEach(function (link, i) {
    link.addEventListener('click', function (e) {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      var n = shown + (i === 0 ? -1 : 1);
      history.pushState(null, '', urlOf(n));
      show(n);
      document.getElementById('versions').scrollIntoView();
    });
  });
  window.addEventListener('popstate', function () { show(wanted()); });
  show(wanted());
})();
`;
