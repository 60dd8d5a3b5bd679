'use strict';
// test/example/app.js: a multi-tenant HTTP service on tenancy with node-postgres.
//
// Every request names its tenant in a "tenant-id" header.  All tenants share
// ONE pg.Pool, connected to the admin database where tenancy is installed;
// per request the service takes a client, opens a transaction, selects the
// tenant with tenancy.use($1, true) (SET LOCAL tenancy.current, as a bind
// parameter, checked by the server), runs its queries and commits.  The
// selection ends with the transaction, so the next request on that connection,
// whatever its tenant, starts with none.  Row-level security on the shared
// table (setup.sql) does the filtering: no query here mentions a tenant.
//
//   GET  /items    {tenant, items: [{tenant, name}, ...]}   the tenant's rows
//   POST /items    body {name}  ->  201 {tenant, item}      one new row
//   GET  /health   {status, selected, pool_size}            no tenant needed
//
// Connection settings come from the usual libpq variables (PGHOST, PGPORT,
// PGDATABASE, PGUSER, PGPASSWORD); PORT is the HTTP port (0: any free port),
// POOL_SIZE the number of database connections.
//
//   PGUSER=example_app PGDATABASE=postgres PORT=3000 node app.js
//   curl -H 'tenant-id: acme' localhost:3000/items

const http = require('node:http');
const { Pool, DatabaseError } = require('pg');

const pool = new Pool({ max: Number(process.env.POOL_SIZE || 5) });
// an idle client that loses its connection must not crash the process
pool.on('error', (err) => console.error('idle database client:', err.message));

// What the tenant check in tenancy.use() raises, as HTTP statuses.
const STATUS_BY_SQLSTATE = {
  '42602': 400, // malformed tenant id
  '42622': 400, // tenant id too long
  '42939': 400, // reserved tenant id
  '42704': 404, // no such tenant
  '42501': 403, // this role is not a member of the tenant
  '55000': 409, // tenant not ready (suspended, being provisioned, ...)
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Runs work(client) in a transaction with the tenant selected.
async function withTenant(tenant, work) {
  const client = await pool.connect();
  let broken; // an error that leaves the connection unusable: discard it
  try {
    await client.query('BEGIN');
    // Checks the tenant (exists, ready, we are a member) and selects it for
    // this transaction only.  Never build SET from the header: bind it.
    await client.query('SELECT tenancy.use($1, true)', [tenant]);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e) => { broken = e; });
    throw err;
  } finally {
    client.release(broken);
  }
}

// Reads a small JSON body (before taking a database connection).
async function readJson(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) throw new HttpError(413, 'body too large');
  }
  try {
    return JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

async function route(req) {
  const path = new URL(req.url, 'http://localhost').pathname;

  if (req.method === 'GET' && path === '/health') {
    // no tenant selected here: on a pooled connection, none must be left over
    const { rows } = await pool.query("SELECT current_setting('tenancy.current') AS selected");
    return [200, { status: 'ok', selected: rows[0].selected, pool_size: pool.options.max }];
  }
  if (path !== '/items') throw new HttpError(404, 'not found');

  // The tenant id is checked by the server (use() raises 42602 for a bad
  // one); only an absent or empty header is refused here, because use('')
  // clears the selection instead of selecting.
  const tenant = req.headers['tenant-id'];
  if (!tenant) throw new HttpError(400, 'missing tenant-id header');

  if (req.method === 'GET') {
    return withTenant(tenant, async (client) => {
      // current_tenant() and pg_backend_pid() show which tenant and which
      // pooled connection served the request (test.js checks both)
      const who = await client.query('SELECT tenancy.current_tenant() AS tenant, pg_backend_pid() AS pid');
      const items = await client.query('SELECT tenant, name FROM public.items ORDER BY name');
      return [200, { tenant: who.rows[0].tenant, backend: who.rows[0].pid, items: items.rows }];
    });
  }
  if (req.method === 'POST') {
    const { name } = await readJson(req);
    if (typeof name !== 'string' || name === '') throw new HttpError(400, 'name must be a non-empty string');
    return withTenant(tenant, async (client) => {
      // the tenant column defaults to the selected tenant
      const { rows } = await client.query(
        'INSERT INTO public.items (name) VALUES ($1) RETURNING tenant, name, tenancy.current_tenant() AS selected',
        [name]);
      const { selected, ...item } = rows[0];
      return [201, { tenant: selected, item }];
    });
  }
  throw new HttpError(405, 'method not allowed');
}

const server = http.createServer(async (req, res) => {
  let status;
  let body;
  try {
    [status, body] = await route(req);
  } catch (err) {
    if (err instanceof DatabaseError) {
      status = STATUS_BY_SQLSTATE[err.code] || 500;
      // the tenant check's messages are meant for the caller; others are not
      body = { error: status === 500 ? 'database error' : err.message, sqlstate: err.code };
    } else if (err instanceof HttpError) {
      status = err.status;
      body = { error: err.message };
    } else {
      status = 500;
      body = { error: 'internal error' };
    }
    if (status === 500) console.error(`${req.method} ${req.url}:`, err.message);
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
});

server.listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

// On SIGTERM/SIGINT: stop accepting, let requests finish, close the pool.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => pool.end().then(() => process.exit(0)));
    server.closeIdleConnections?.();
  });
}
