'use strict';
// The later change to entity/Post.js: a "published" column.  test/t/110_typeorm.pl
// copies this file over entity/Post.js after the first migration, and
// "typeorm migration:generate" writes the second migration from the difference.
const { EntitySchema } = require('typeorm');

module.exports = new EntitySchema({
  name: 'Post',
  tableName: 'post',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    title: { type: 'text' },
    published: { type: 'boolean', default: false },
  },
  relations: {
    author: { type: 'many-to-one', target: 'User', inverseSide: 'posts', nullable: false, onDelete: 'CASCADE' },
  },
  indices: [{ name: 'post_author', columns: ['author'] }],
});
