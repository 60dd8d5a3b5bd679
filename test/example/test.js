'use strict';
// test/example/test.js: fires many concurrent requests with mixed tenants at
// app.js (set up by setup.sql) and checks that every answer belongs to the
// tenant its request named, that the per-tenant counts add up, and that the
// bad cases get the right status and SQLSTATE.  Exits non-zero on any failure.
//
//   APP_URL=http://127.0.0.1:3000 REQUESTS=600 CONCURRENCY=50 node test.js
//
// The last line is "SUMMARY " followed by the figures as JSON.

const http = require('node:http');

const APP_URL = process.env.APP_URL || 'http://127.0.0.1:3000';
const REQUESTS = Number(process.env.REQUESTS || 600);
const CONCURRENCY = Number(process.env.CONCURRENCY || 50);

// as in setup.sql
const MEMBERS = ['acme', 'globex', 'initech', 'umbrella'];
const NON_MEMBER = 'hooli';
const SUSPENDED = 'soylent';

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const failures = [];
let checks = 0;
function check(ok, what) {
  checks++;
  if (!ok) failures.push(what);
  return ok;
}

function request(method, path, tenant, body) {
  const url = new URL(path, APP_URL);
  const headers = { 'content-type': 'application/json' };
  if (tenant !== undefined) headers['tenant-id'] = tenant;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent, timeout: 30000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(data); } catch { json = { unparsed: data }; }
        resolve({ status: res.statusCode, body: json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

// A small seeded PRNG, so that a failing mix can be replayed (SEED=...).
const SEED = Number(process.env.SEED || 20260101);
let state = SEED >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(random() * a.length)];

// The bad cases, each with the answer it must get.
const BAD = {
  unknown: { tenant: 'nosuchco', status: 404, sqlstate: '42704' },
  invalid: { tenant: 'Acme;drop', status: 400, sqlstate: '42602' },
  non_member: { tenant: NON_MEMBER, status: 403, sqlstate: '42501' },
  suspended: { tenant: SUSPENDED, status: 409, sqlstate: '55000' },
  no_header: { tenant: undefined, status: 400, sqlstate: undefined },
  empty_header: { tenant: '', status: 400, sqlstate: undefined },
};

// The mix: mostly reads and writes of member tenants, some bad cases, a few
// health checks (which must never find a tenant left selected).
function plan(n) {
  const list = [];
  for (let i = 0; i < n; i++) {
    const r = random();
    if (r < 0.45) list.push({ kind: 'get', tenant: pick(MEMBERS) });
    else if (r < 0.70) list.push({ kind: 'post', tenant: pick(MEMBERS) });
    else if (r < 0.75) list.push({ kind: 'health' });
    else list.push({ kind: pick(Object.keys(BAD)), post: random() < 0.5 });
  }
  return list;
}

const itemsOk = (tenant, items) => Array.isArray(items)
  && items.every((it) => it.tenant === tenant && it.name.startsWith(`${tenant}-`));

async function main() {
  const started = Date.now();
  const health = await request('GET', '/health');
  check(health.status === 200 && health.body.selected === '', `health: ${JSON.stringify(health)}`);
  const poolSize = health.body.pool_size;

  // where each member tenant starts (the test may run twice on one database)
  const baseline = {};
  for (const t of MEMBERS) {
    const r = await request('GET', '/items', t);
    check(r.status === 200 && r.body.tenant === t && itemsOk(t, r.body.items), `baseline ${t}: ${JSON.stringify(r)}`);
    baseline[t] = r.body.items.length;
  }

  const list = plan(REQUESTS);
  const statuses = {};
  const byKind = {};
  const posted = Object.fromEntries(MEMBERS.map((t) => [t, []]));
  const tenantsByBackend = new Map();
  let rowsChecked = 0;
  let foreignRows = 0;
  let next = 0;
  const t0 = Date.now();

  async function one(job, i) {
    let r;
    const name = job.kind === 'post' ? `${job.tenant}-r${i}-${SEED}-${t0}` : undefined;
    if (job.kind === 'get') r = await request('GET', '/items', job.tenant);
    else if (job.kind === 'post') r = await request('POST', '/items', job.tenant, { name });
    else if (job.kind === 'health') r = await request('GET', '/health');
    else if (job.post) r = await request('POST', '/items', BAD[job.kind].tenant, { name: 'x' });
    else r = await request('GET', '/items', BAD[job.kind].tenant);
    statuses[r.status] = (statuses[r.status] || 0) + 1;
    byKind[job.kind] = (byKind[job.kind] || 0) + 1;
    const tenant = job.kind in BAD ? BAD[job.kind].tenant : job.tenant;
    const what = `#${i} ${job.post ? 'POST ' : ''}${job.kind} ${JSON.stringify(tenant ?? null)}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

    if (job.kind === 'get') {
      if (!check(r.status === 200 && r.body.tenant === job.tenant, what)) return;
      for (const it of r.body.items) {
        rowsChecked++;
        if (it.tenant !== job.tenant) foreignRows++;
      }
      check(itemsOk(job.tenant, r.body.items), `foreign rows in ${what}`);
      const n = r.body.items.length;
      check(n >= baseline[job.tenant], `fewer rows than at the start: ${what}`);
      if (!tenantsByBackend.has(r.body.backend)) tenantsByBackend.set(r.body.backend, new Set());
      tenantsByBackend.get(r.body.backend).add(job.tenant);
    } else if (job.kind === 'post') {
      if (check(r.status === 201 && r.body.tenant === job.tenant && r.body.item
        && r.body.item.tenant === job.tenant && r.body.item.name === name, what)) posted[job.tenant].push(name);
    } else if (job.kind === 'health') {
      check(r.status === 200 && r.body.selected === '', `a tenant was left selected: ${what}`);
    } else {
      const want = BAD[job.kind];
      check(r.status === want.status && r.body.sqlstate === want.sqlstate && !('items' in r.body), what);
    }
  }

  async function worker() {
    while (next < list.length) {
      const i = next++;
      try {
        await one(list[i], i);
      } catch (err) {
        check(false, `#${i} ${list[i].kind}: ${err.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const duration = (Date.now() - t0) / 1000;

  // every tenant holds exactly its rows: what it had, plus what was posted
  const finalCounts = {};
  for (const t of MEMBERS) {
    const r = await request('GET', '/items', t);
    if (!check(r.status === 200 && itemsOk(t, r.body.items), `final ${t}: ${JSON.stringify(r).slice(0, 300)}`)) continue;
    finalCounts[t] = r.body.items.length;
    check(finalCounts[t] === baseline[t] + posted[t].length,
      `${t}: ${finalCounts[t]} rows, expected ${baseline[t]} + ${posted[t].length}`);
    const names = new Set(r.body.items.map((it) => it.name));
    check(posted[t].every((n) => names.has(n)), `${t}: a posted row is missing`);
  }

  // the pool was shared: few connections, each serving several tenants
  const backends = tenantsByBackend.size;
  const mostTenants = Math.max(0, ...[...tenantsByBackend.values()].map((s) => s.size));
  check(backends >= 1 && backends <= poolSize, `${backends} backends for a pool of ${poolSize}`);
  check(mostTenants >= 2, 'no connection served more than one tenant: nothing was shared');

  for (const kind of Object.keys(BAD)) check(byKind[kind] > 0, `the mix had no ${kind} request`);

  const summary = {
    requests: list.length,
    concurrency: CONCURRENCY,
    pool_size: poolSize,
    duration_s: duration,
    statuses,
    by_kind: byKind,
    rows_checked: rowsChecked,
    foreign_rows: foreignRows,
    posted: Object.values(posted).reduce((a, p) => a + p.length, 0),
    final_counts: finalCounts,
    backends,
    most_tenants_on_one_backend: mostTenants,
    checks,
    failures: failures.length,
    seed: SEED,
  };
  for (const f of failures.slice(0, 20)) console.log(`FAIL ${f}`);
  if (failures.length > 20) console.log(`FAIL ... and ${failures.length - 20} more`);
  console.log(`${list.length} requests, concurrency ${CONCURRENCY}, pool size ${poolSize}, ${duration.toFixed(2)} s`
    + ` (${Math.round(list.length / duration)} req/s); total ${((Date.now() - started) / 1000).toFixed(2)} s`);
  console.log(`statuses ${JSON.stringify(statuses)}; ${rowsChecked} rows checked, ${foreignRows} foreign;`
    + ` ${backends} connections, up to ${mostTenants} tenants each`);
  console.log(`checks: ${checks - failures.length} ok, ${failures.length} failed`);
  console.log(`SUMMARY ${JSON.stringify(summary)}`);
  agent.destroy();
  process.exitCode = failures.length === 0 ? 0 : 1;
}

main().catch((err) => {
  console.log(`FAIL ${err.stack}`);
  process.exitCode = 2;
});
