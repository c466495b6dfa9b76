// Unit test of the client-side selection logic of web/route.js (issue 15
// item 4; docs/overlay.md "Routing: the client side"): the token's room, the
// rtt query value, and the order in which nodes are tried. The network part
// (routeToNode, measureRtt) runs against real nodes in
// tests/e2e/cluster_route_chromium.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { orderNodes, rttParam, tokenRoom } from '../../web/route.js';

const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const tok = (claims) => `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u(claims)}.sig`;

test('tokenRoom reads grants.room; null when there is none or the token is garbage', () => {
  assert.equal(tokenRoom(tok({ iss: 'k', sub: 'u', grants: { room: 'class-7', roomJoin: true } })), 'class-7');
  assert.equal(tokenRoom(tok({ iss: 'k', sub: 'u', grants: { roomAdmin: true } })), null);
  assert.equal(tokenRoom(tok({ iss: 'k', grants: { room: '' } })), null);
  assert.equal(tokenRoom('not-a-token'), null);
  assert.equal(tokenRoom(`a.${Buffer.from('{not json').toString('base64url')}.c`), null);
  // base64url without padding, with - and _ (a room name that makes them)
  const claims = { grants: { room: 'r>>>??~~' }, pad: 'x' };
  assert.equal(tokenRoom(tok(claims)), 'r>>>??~~');
});

test('rttParam: id:ms pairs, rounded, clamped, unmeasured left out, at most 16', () => {
  assert.equal(rttParam({ a: 12.4, b: 80.6 }), 'a:12,b:81');
  assert.equal(rttParam({ 'host:7880': 3 }), 'host:7880:3'); /* ids with ':' : the node splits at the last one */
  assert.equal(rttParam({ a: -1, b: 1e9, c: null, d: NaN }), 'a:0,b:60000');
  const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`n${i}`, i]));
  assert.equal(rttParam(many).split(',').length, 16);
  assert.equal(rttParam({}), '');
});

const cand = (id, extra = {}) => ({ id, url: `http://${id}`, eligible: true, draining: false, ...extra });

test('orderNodes: the chosen node, then measured candidates fastest first, then unmeasured', () => {
  const answer = {
    node: { id: 'b', url: 'http://b' },
    candidates: [cand('a'), cand('b'), cand('c'), cand('d'), cand('e')],
  };
  const order = orderNodes(answer, { a: 50, b: 20, c: 10 });
  assert.deepEqual(order.map((n) => n.id), ['b', 'c', 'a', 'd', 'e']);
  assert.equal(order[0].rtt, 20);
  assert.equal(order[3].rtt, null);
});

test('orderNodes never offers a draining or full node, nor one twice', () => {
  const answer = {
    node: { id: 'a', url: 'http://a' },
    candidates: [cand('a'), cand('b', { draining: true, eligible: false }), cand('c', { eligible: false }), cand('d')],
  };
  assert.deepEqual(orderNodes(answer, { b: 1, c: 1, d: 5 }).map((n) => n.id), ['a', 'd']);
});

test('orderNodes with no chosen node (503: every node full or draining) is empty', () => {
  const answer = { error: 'every node is full or draining; retry later', candidates: [cand('a', { eligible: false })] };
  assert.deepEqual(orderNodes(answer, { a: 1 }), []);
});

test('orderNodes: equal RTTs go to the smaller id (as the node does)', () => {
  const answer = { node: { id: 'z', url: 'http://z' }, candidates: [cand('z'), cand('y'), cand('x')] };
  assert.deepEqual(orderNodes(answer, { y: 7, x: 7 }).map((n) => n.id), ['z', 'x', 'y']);
});
