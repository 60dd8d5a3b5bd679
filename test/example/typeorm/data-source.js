'use strict';
// The project's TypeORM data source, for the TypeORM CLI
// (typeorm migration:generate / migration:run -d data-source.js).  Connection
// settings come from the libpq environment: PGHOST (a host name or a socket
// directory), PGPORT, PGDATABASE, PGUSER, PGPASSWORD.  Point it at a scratch
// database that only ever holds what this project's migrations create: that
// is what migration:generate diffs the entities against.
const path = require('node:path');
const { DataSource } = require('typeorm');

module.exports = new DataSource({
  type: 'postgres',
  host: process.env.PGHOST || 'localhost',
  port: Number(process.env.PGPORT || 5432),
  database: process.env.PGDATABASE,
  username: process.env.PGUSER,
  password: process.env.PGPASSWORD,
  entities: [require('./entity/User'), require('./entity/Post')],
  migrations: [path.join(__dirname, 'migrations', '*.js')],
  synchronize: false,
  logging: false,
});
