'use strict';
// A post belongs to a user (a foreign key to "user").
const { EntitySchema } = require('typeorm');

module.exports = new EntitySchema({
  name: 'Post',
  tableName: 'post',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    title: { type: 'text' },
  },
  relations: {
    author: { type: 'many-to-one', target: 'User', inverseSide: 'posts', nullable: false, onDelete: 'CASCADE' },
  },
  indices: [{ name: 'post_author', columns: ['author'] }],
});
