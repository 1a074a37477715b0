/*
 * prom-client's metric classes, loaded from their own files (#21): the package's index also loads the
 * Pushgateway (http, https), the default process metrics (which load @opentelemetry/api, 51 modules), the
 * Summary's t-digest and the cluster aggregator, none of which cs-llm uses: about 7 MiB of the daemon's RSS.
 * The classes are the same objects the index exports (same files, same module cache), so /metrics renders
 * byte for byte as before. prom-client has no "exports" map, and its version is pinned in package.json.
 */

import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry.js') as typeof Prom.Registry;
export type Registry<T extends Prom.RegistryContentType = Prom.PrometheusContentType> = Prom.Registry<T>;
export const Counter = require('prom-client/lib/counter.js') as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = require('prom-client/lib/gauge.js') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram.js') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
