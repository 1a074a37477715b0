/*
 * The dashboard's components: pure functions of a DashboardState (plus the terminal width and whether to
 * use color), so tests render them from state objects. Events go in <Static> above the live panel: printed
 * once, scrolling up like a log, while the panel below redraws in place.
 */

import { Box, Static, Text } from 'ink';
import type { DashboardEvent, DashboardState, GpuView } from './state.js';
import {
  bar,
  formatCount,
  formatGiB,
  formatShort,
  formatInterval,
  formatMoney,
  formatPercent,
  formatRate,
  formatSeconds,
  sparkline,
} from './format.js';
import { formatDuration } from './state.js';

export interface ViewProps {
  state: DashboardState;
  color: boolean;
  columns: number;
  /** The time the panel is drawn at (for "since" texts). */
  now: number;
}

type Tone = 'green' | 'yellow' | 'red' | 'cyan' | 'gray' | undefined;

function T({ tone, color, bold, children }: { tone?: Tone; color: boolean; bold?: boolean; children: React.ReactNode }) {
  return (
    <Text color={color ? tone : undefined} bold={color ? bold : false}>
      {children}
    </Text>
  );
}

function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

function levelTone(level: DashboardEvent['level']): Tone {
  return level === 'error' ? 'red' : level === 'warn' ? 'yellow' : 'cyan';
}

export function EventLine({ event, color }: { event: DashboardEvent; color: boolean }) {
  return (
    <Text>
      <T tone="gray" color={color}>{`${clock(event.at)} `}</T>
      <T tone={levelTone(event.level)} color={color}>
        {event.text}
      </T>
    </Text>
  );
}

function Label({ children }: { children: string }) {
  return <Text>{children.padEnd(10)}</Text>;
}

export function Header({ state, color, now }: Omit<ViewProps, 'columns'>) {
  const daemon =
    state.reachable === null ? (
      <T tone="gray" color={color}>
        connecting…
      </T>
    ) : state.reachable ? (
      <T tone="green" color={color}>
        {`daemon up ${state.uptimeSeconds === null ? '' : formatDuration(state.uptimeSeconds)}`.trim()}
      </T>
    ) : (
      <T tone="red" color={color} bold>
        {`daemon unreachable since ${clock(state.unreachableSince ?? now)} (${formatDuration((now - (state.unreachableSince ?? now)) / 1000)})`}
      </T>
    );
  const engine =
    state.engineUp === null ? (
      <T tone="gray" color={color}>
        engine ?
      </T>
    ) : state.engineUp ? (
      <T tone="green" color={color}>
        engine up
      </T>
    ) : (
      <T tone="red" color={color} bold>
        engine down
      </T>
    );
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <T color={color} bold>
          cs-llm
        </T>
        {`  ${state.url}  `}
        {daemon}
        {'  '}
        {engine}
        {state.model ? `  model ${state.model}` : ''}
      </Text>
      {state.reachable === false && state.problem ? (
        <T tone="red" color={color}>{`  ${state.problem}; retrying every ${formatInterval(state.intervalMs)}`}</T>
      ) : null}
    </Box>
  );
}

export function Traffic({ state, color, columns }: Omit<ViewProps, 'now'>) {
  const sparkWidth = Math.max(10, Math.min(60, columns - 60));
  const warn = (v: number | null, limit: number): Tone => (v !== null && v > limit ? 'red' : undefined);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Label>requests</Label>
        {`${formatRate(state.requestsPerSecond).padStart(7)} `}
        <T tone="cyan" color={color}>
          {sparkline(state.rpsHistory, sparkWidth).padEnd(sparkWidth)}
        </T>
        {`  in flight ${formatCount(state.inFlight)}  queued ${formatCount(state.queued)}`}
      </Text>
      <Text wrap="truncate-end">
        <Label>latency</Label>
        {`p50 ${formatSeconds(state.latency.p50)}  p95 ${formatSeconds(state.latency.p95)}  p99 ${formatSeconds(state.latency.p99)}`}
        {`   TTFT p50 ${formatSeconds(state.ttft.p50)}  p95 ${formatSeconds(state.ttft.p95)}`}
      </Text>
      <Text wrap="truncate-end">
        <Label>output</Label>
        {`${formatRate(state.tokensPerSecond, ' tokens/s')}   errors `}
        <T tone={warn(state.errorRate, 0.01)} color={color}>
          {formatPercent(state.errorRate)}
        </T>
        {'  429s '}
        <T tone={warn(state.rateLimitedRate, 0.01)} color={color}>
          {formatPercent(state.rateLimitedRate)}
        </T>
        {`   sessions ${formatCount(state.sessionsActive)}`}
      </Text>
      {state.cost.length > 0 ? (
        <Text wrap="truncate-end">
          <Label>cost</Label>
          {state.cost
            .map((c) => `${formatMoney(c.perHour, c.currency)}/h  ${formatMoney(c.per1kSessions, c.currency)} per 1k sessions`)
            .join('   ')}
          {'  (since the daemon started)'}
        </Text>
      ) : null}
    </Box>
  );
}

/** Lines shown at most; the quietest tenants after them are summed up in one more. */
const TENANT_LINES = 6;

/** One line per tenant once there is more than the implicit one (or a quota): who is busy, who is refused. */
export function Tenants({ state, color }: Omit<ViewProps, 'now' | 'columns'>) {
  const { tenants } = state;
  if (tenants.length === 0 || (tenants.length === 1 && tenants[0]!.tenant === 'default' && tenants[0]!.tokensPerDay === null)) return null;
  const shown = tenants.slice(0, TENANT_LINES);
  return (
    <Box flexDirection="column">
      {shown.map((t) => (
        <Text key={t.tenant} wrap="truncate-end">
          <Label>tenant</Label>
          {`${t.tenant.padEnd(16)} ${formatRate(t.requestsPerSecond, ' req/s').padStart(11)} ${formatRate(t.tokensPerSecond, ' tokens/s').padStart(15)}  quota 429s `}
          <T tone={t.refused ? 'red' : undefined} color={color}>
            {formatCount(t.refused)}
          </T>
          {t.tokensPerDay === null ? '' : `  tokens today ${formatShort(t.tokensToday)}/${formatShort(t.tokensPerDay)}`}
        </Text>
      ))}
      {tenants.length > shown.length ? <T tone="gray" color={color}>{`  and ${tenants.length - shown.length} more tenant(s)`}</T> : null}
    </Box>
  );
}

export function Engine({ state, color }: Omit<ViewProps, 'now' | 'columns'>) {
  const kv = state.kvCacheUsage;
  if (state.engines.length > 1) {
    // Replicas: one line per engine, so a slow or full one shows.
    return (
      <Box flexDirection="column">
        {state.engines.map((e) => (
          <Text key={e.upstream} wrap="truncate-end">
            <Label>engine</Label>
            {`${e.upstream.replace(/^https?:\/\//, '')} `}
            <T tone={e.up ? 'green' : 'red'} color={color}>
              {e.up ? 'up' : 'down'}
            </T>
            {`  running ${formatCount(e.running)}  waiting ${formatCount(e.waiting)}  KV cache `}
            {e.kvCache === null ? '-' : `${bar(e.kvCache, 10)} ${formatPercent(e.kvCache)}`}
          </Text>
        ))}
      </Box>
    );
  }
  return (
    <Text wrap="truncate-end">
      <Label>engine</Label>
      {`running ${formatCount(state.engineRunning)}  waiting ${formatCount(state.engineWaiting)}  KV cache `}
      {kv === null ? (
        '-'
      ) : (
        <T tone={kv > 0.9 ? 'red' : kv > 0.7 ? 'yellow' : 'green'} color={color}>{`${bar(kv, 20)} ${formatPercent(kv)}`}</T>
      )}
    </Text>
  );
}

export function GpuLine({ gpu, color, columns }: { gpu: GpuView; color: boolean; columns: number }) {
  const used = gpu.memoryUsedBytes;
  const total = gpu.memoryTotalBytes;
  const fraction = used !== null && total ? used / total : null;
  const barWidth = Math.max(10, Math.min(30, columns - 90));
  return (
    <Text wrap="truncate-end">
      <Label>{`GPU ${gpu.index}`}</Label>
      {`${gpu.name.replace(/^NVIDIA /, '')}  VRAM `}
      {fraction === null ? (
        '-'
      ) : (
        <T tone={fraction > 0.95 ? 'red' : fraction > 0.85 ? 'yellow' : 'green'} color={color}>
          {bar(fraction, barWidth)}
        </T>
      )}
      {` ${formatGiB(used)}/${formatGiB(total)} GiB  util ${formatPercent(gpu.utilization)}  ${gpu.temperatureC === null ? '-' : `${Math.round(gpu.temperatureC)}°C`}${gpu.powerW === null ? '' : `  ${Math.round(gpu.powerW)} W`}`}
    </Text>
  );
}

export function LivePanel({ state, color, columns, now }: ViewProps) {
  return (
    <Box flexDirection="column">
      <Header state={state} color={color} now={now} />
      <Traffic state={state} color={color} columns={columns} />
      <Tenants state={state} color={color} />
      <Engine state={state} color={color} />
      {state.gpus.length === 0 ? (
        <Text>
          <Label>GPU</Label>
          <T tone="gray" color={color}>
            no GPU figures (no nvidia-smi on the daemon host)
          </T>
        </Text>
      ) : (
        state.gpus.map((gpu) => <GpuLine key={gpu.index} gpu={gpu} color={color} columns={columns} />)
      )}
      <T tone="gray" color={color}>{`q quits · every ${formatInterval(state.intervalMs)}`}</T>
    </Box>
  );
}

export function Dashboard(props: ViewProps) {
  return (
    <>
      <Static items={props.state.events}>{(event) => <EventLine key={event.id} event={event} color={props.color} />}</Static>
      <LivePanel {...props} />
    </>
  );
}
