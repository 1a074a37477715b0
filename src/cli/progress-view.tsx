import { Box, render, Static, Text } from 'ink';
import { progressBar, reduceView, initialViewState, type ProgressUpdate, type ProgressViewState } from './progress-state.js';

/**
 * The terminal view of a long command: finished lines in <Static> (printed once, scrolling up), the step in
 * progress below with a bar when its size is known and its rate once it has one. A pure function of
 * ProgressViewState.
 */
export function ProgressView({ state, color }: { state: ProgressViewState; color: boolean }) {
  const current = state.current;
  return (
    <>
      <Static items={state.done.map((line, i) => ({ line, key: `${i}` }))}>
        {(item) => (
          <Text key={item.key}>
            <Text color={color ? 'green' : undefined}>{'✓ '}</Text>
            {item.line}
          </Text>
        )}
      </Static>
      {current && (
        <Box>
          <Text color={color ? 'cyan' : undefined}>{'… '}</Text>
          {current.fraction !== undefined && <Text>{`${progressBar(current.fraction)} `}</Text>}
          <Text>{current.rate ? `${current.text} ${current.rate}` : current.text}</Text>
        </Box>
      )}
    </>
  );
}

/** Draws updates with Ink on stderr; frequent ones at most ten times a second. */
export function inkReporter(color: boolean, now: () => number = Date.now): { update(updates: ProgressUpdate[]): void; close(): void } {
  let state = initialViewState;
  const instance = render(<ProgressView state={state} color={color} />, {
    stdout: process.stderr,
    patchConsole: false,
    exitOnCtrlC: false,
  });
  let closed = false;
  let lastRender = 0;
  return {
    update(updates) {
      if (closed || updates.length === 0) return;
      for (const u of updates) state = reduceView(state, u, now());
      const frequent = updates.every((u) => u.kind === 'live' && u.frequent);
      if (frequent && now() - lastRender < 100) return;
      lastRender = now();
      instance.rerender(<ProgressView state={state} color={color} />);
    },
    close() {
      if (closed) return;
      closed = true;
      // A step that keeps its line stays on screen as the last frame; a transfer's bar goes.
      if (state.current && !state.current.keep) instance.rerender(<ProgressView state={{ ...state, current: null }} color={color} />);
      else instance.rerender(<ProgressView state={state} color={color} />);
      instance.unmount();
      instance.cleanup();
    },
  };
}
