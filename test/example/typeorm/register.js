'use strict';
// test/example/typeorm/register.js: registers a TypeORM project's migrations
// with tenancy, so that tenancy.migrate_all() applies them to every tenant
// and tenancy.migrate_all(to_version => N) rolls them back.
//
//   PGDATABASE=<admin database> node register.js [migrations directory]
//   node register.js --dry-run [migrations directory]     # prints, connects to nothing
//
// The directory (default: ./migrations) holds the migration classes the
// TypeORM CLI wrote (typeorm migration:generate -o), as CommonJS files.  For
// a TypeScript project, point it at the compiled JavaScript.  Each class's
// up() and down() are called with a stand-in QueryRunner that records the SQL
// passed to queryRunner.query(); nothing is run.  Each migration is then
//
//   SELECT tenancy.add_migration(version => <the class name's 13-digit timestamp>,
//                                sql => <up() statements joined with ";\n">,
//                                description => <the class name>,
//                                down => <down() statements, likewise>)
//
// in the admin database, all of them in one transaction: either every
// migration is registered or none is.  Registering a migration again with the
// same SQL changes nothing (tenancy answers with a NOTICE), so run this on
// every deploy; other SQL under a registered version is refused (42710).
//
// The SQL is registered as TypeORM wrote it: unqualified names ("user"), which
// tenancy runs with search_path = public in database tenants and with the
// tenant's schema in schema tenants.  A migration that calls anything on the
// QueryRunner but query() with plain SQL (createTable(), query parameters, ...)
// is refused: tenancy runs SQL text, not TypeORM code.  A down() that runs no
// statement registers no down: that migration cannot be rolled back.  A class
// with "transaction = false" is registered with transactional => false.
//
// Connection settings are libpq's environment variables (PGHOST, PGPORT,
// PGDATABASE, PGUSER, PGPASSWORD), read by node-postgres.  The role needs
// EXECUTE on tenancy.add_migration (a superuser, or tenancy's admin role).
// Exits 0 on success, 1 on any error (printed with its SQLSTATE).

const fs = require('node:fs');
const path = require('node:path');

function fail(message) {
  process.stderr.write(`register.js: ${message}\n`);
  process.exit(1);
}

// The SQL one of up() or down() runs, through a QueryRunner that records it.
async function recordSql(migrationName, method, run) {
  const statements = [];
  const recorder = {
    query(sql, parameters) {
      if (typeof sql !== 'string')
        throw new Error(`${migrationName}.${method}() passes queryRunner.query() something that is not SQL text`);
      if (parameters !== undefined && !(Array.isArray(parameters) && parameters.length === 0))
        throw new Error(`${migrationName}.${method}() passes query parameters to queryRunner.query(); ` +
          'tenancy registers SQL text only: write the values into the SQL');
      // TypeORM writes no terminating semicolon, and some statements end with a space
      const text = sql.replace(/[\s;]+$/, '');
      if (text.trim() !== '')
        statements.push(text);
      return Promise.resolve([]);
    },
  };
  const queryRunner = new Proxy(recorder, {
    get(target, prop) {
      if (prop in target || typeof prop === 'symbol' || prop === 'then')
        return target[prop];
      throw new Error(`${migrationName}.${method}() uses queryRunner.${String(prop)}; ` +
        'only queryRunner.query() with SQL text can be registered with tenancy');
    },
  });
  await run(queryRunner);
  return statements;
}

// Every migration class in the directory, as TypeORM would find them: a file
// exports one class (typeorm migration:generate -o) or several (compiled
// TypeScript); the version is the timestamp ending the class name.
async function loadMigrations(dir) {
  let files;
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
  } catch (e) {
    fail(`cannot read the migrations directory ${dir}: ${e.message}`);
  }
  const migrations = [];
  for (const file of files) {
    const exported = require(path.resolve(dir, file));
    const classes = typeof exported === 'function' ? [exported] : Object.values(exported);
    for (const Class of classes) {
      if (typeof Class !== 'function' || typeof Class.prototype?.up !== 'function')
        continue;
      const instance = new Class();
      const name = instance.name || Class.name;
      // TypeORM's own rule (MigrationExecutor): the last 13 characters are a JavaScript timestamp
      const m = /(\d{13})$/.exec(name);
      if (!m)
        fail(`${file}: migration class name "${name}" does not end with a 13-digit timestamp`);
      const up = await recordSql(name, 'up', (qr) => instance.up(qr));
      const down = typeof instance.down === 'function'
        ? await recordSql(name, 'down', (qr) => instance.down(qr)) : [];
      if (up.length === 0)
        fail(`${file}: ${name}.up() runs no SQL`);
      migrations.push({
        version: m[1],
        description: name,
        sql: up.join(';\n'),
        down: down.length ? down.join(';\n') : null,
        transactional: instance.transaction !== false,
        file,
        statements: { up: up.length, down: down.length },
      });
    }
  }
  migrations.sort((a, b) => (BigInt(a.version) < BigInt(b.version) ? -1 : 1));
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version === migrations[i - 1].version)
      fail(`two migrations have version ${migrations[i].version}: ${migrations[i - 1].description}, ${migrations[i].description}`);
  }
  return migrations;
}

function statements(n) {
  return n === 1 ? '1 statement' : `${n} statements`;
}

async function register(migrations) {
  const { Client } = require('pg');
  const client = new Client({ application_name: 'tenancy-register' });
  client.on('notice', (n) => process.stdout.write(`NOTICE: ${n.message}\n`));
  await client.connect();
  try {
    await client.query('BEGIN');
    for (const m of migrations) {
      // transactional is passed only when it is false, the exception
      await client.query(
        m.transactional
          ? 'SELECT tenancy.add_migration(version => $1::bigint, sql => $2::text, description => $3::text, down => $4::text)'
          : 'SELECT tenancy.add_migration(version => $1::bigint, sql => $2::text, description => $3::text, down => $4::text, transactional => false)',
        [m.version, m.sql, m.description, m.down]);
      process.stdout.write(`migration ${m.version} ${m.description}: ${statements(m.statements.up)} up, ` +
        `${m.down === null ? 'no down' : `${statements(m.statements.down)} down`}\n`);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    await client.end();
  }
}

async function main() {
  const args = process.argv.slice(2);
  const dryRun = args[0] === '--dry-run';
  if (dryRun)
    args.shift();
  if (args.length > 1 || (args[0] || '').startsWith('-'))
    fail('usage: node register.js [--dry-run] [migrations directory]');
  const dir = args[0] || path.join(process.cwd(), 'migrations');
  const migrations = await loadMigrations(dir);
  if (migrations.length === 0)
    fail(`no migration classes in ${dir}`);
  if (dryRun) {
    for (const m of migrations) {
      const { file, statements, ...row } = m;
      process.stdout.write(JSON.stringify(row) + '\n');
    }
    return;
  }
  await register(migrations);
  process.stdout.write(`${migrations.length} migrations registered\n`);
}

main().catch((e) => fail(e.code ? `${e.message} (SQLSTATE ${e.code})` : e.message));
