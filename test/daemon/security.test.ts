import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SESSION_ID_PATTERN,
  allowedHostsFor,
  bearerToken,
  hostAllowed,
  hostName,
  isLoopbackHost,
  originAllowed,
} from '../../src/daemon/security.js';

test('Host headers are compared by name without the port, case-insensitively', () => {
  assert.equal(hostName('LocalHost:8080'), 'localhost');
  assert.equal(hostName('[::1]:8080'), '[::1]');
  assert.equal(hostName('example.com'), 'example.com');
  const allowed = allowedHostsFor('127.0.0.1', ['chat.internal']);
  assert.equal(hostAllowed('localhost:8080', allowed), true);
  assert.equal(hostAllowed('chat.internal', allowed), true);
  assert.equal(hostAllowed('rebind.attacker.example:8080', allowed), false);
  assert.equal(hostAllowed(undefined, allowed), false);
  assert.equal(hostAllowed('192.168.1.10:8080', allowedHostsFor('192.168.1.10', [])), true);
});

test('loopback addresses are recognised; a wildcard bind is not loopback', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) assert.equal(isLoopbackHost(h), false, h);
});

test('bearer tokens and session ids are parsed strictly', () => {
  assert.equal(bearerToken('Bearer csk_abc'), 'csk_abc');
  assert.equal(bearerToken('bearer   csk_abc '), 'csk_abc');
  assert.equal(bearerToken('Basic abc'), null);
  assert.equal(bearerToken(undefined), null);
  assert.equal(SESSION_ID_PATTERN.test('user-42:chat.1_a'), true);
  assert.equal(SESSION_ID_PATTERN.test(''), false);
  assert.equal(SESSION_ID_PATTERN.test('a b'), false);
  assert.equal(SESSION_ID_PATTERN.test('x'.repeat(129)), false);
});

test('an Origin passes only with the scheme, an allowed host and the port the request came in on; no Origin (not a browser) passes', () => {
  const allowed = allowedHostsFor('127.0.0.1', ['chat.example.com']);
  assert.equal(originAllowed(undefined, '127.0.0.1:8080', allowed), true);
  assert.equal(originAllowed('http://localhost:8080', '127.0.0.1:8080', allowed), true, 'another loopback name of the daemon');
  assert.equal(originAllowed('http://127.0.0.1:8080', '127.0.0.1:8080', allowed), true);
  assert.equal(originAllowed('http://localhost:3000', 'localhost:8080', allowed), false, 'a page on another port of this machine');
  assert.equal(originAllowed('http://localhost', 'localhost:8080', allowed), false);
  assert.equal(originAllowed('https://localhost:8080', 'localhost:8080', allowed), false, 'the daemon speaks plain http');
  assert.equal(originAllowed('http://[::1]:8080', '[::1]:8080', allowed), true);
  assert.equal(originAllowed('https://evil.example', 'evil.example', allowed), false);
  assert.equal(originAllowed('http://evil.example:8080', '127.0.0.1:8080', allowed), false);
  assert.equal(originAllowed('null', '127.0.0.1:8080', allowed), false);
  assert.equal(originAllowed('file:///tmp/page.html', '127.0.0.1:8080', allowed), false);
  // Behind a TLS proxy that uses a configured name: its https origin, on its port.
  assert.equal(originAllowed('https://chat.example.com', 'chat.example.com', allowed), true);
  assert.equal(originAllowed('https://chat.example.com:8443', 'chat.example.com', allowed), false);
  assert.equal(originAllowed('http://chat.example.com:8080', 'chat.example.com:8080', allowed), true);
});
