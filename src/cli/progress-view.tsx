import { Box, render, Static, Text } from 'ink';
import type { UpProgress } from '../engine/up.js';
import type { Output } from './output.js';
import { initialViewState, progressBar, reduceView, type ProgressReporter, type ProgressViewState } from './progress.js';

/**
 * The terminal view of `up`: finished steps in <Static> (printed once, scrolling up), the step in
 * progress below with a bar when its size is known. A pure function of ProgressViewState.
 */
export function ProgressView({ state, color }: { state: ProgressViewState; color: boolean }) {
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
      {state.current && (
        <Box>
          <Text color={color ? 'cyan' : undefined}>{'… '}</Text>
          {state.current.fraction !== undefined && <Text>{`${progressBar(state.current.fraction)} `}</Text>}
          <Text>{state.current.label}</Text>
        </Box>
      )}
    </>
  );
}

export function inkReporter(output: Output): ProgressReporter {
  let state = initialViewState;
  const instance = render(<ProgressView state={state} color={output.color} />, {
    stdout: process.stderr,
    patchConsole: false,
    exitOnCtrlC: false,
  });
  let closed = false;
  let lastRender = 0;
  return {
    event(event: UpProgress) {
      if (closed) return;
      state = reduceView(state, event);
      // A big pull sends thousands of events: redraw at most ten times a second for those.
      const now = Date.now();
      if (event.stage === 'pulling' && now - lastRender < 100) return;
      lastRender = now;
      instance.rerender(<ProgressView state={state} color={output.color} />);
    },
    close() {
      if (closed) return;
      closed = true;
      // The step still in progress stays on screen as the last frame.
      instance.unmount();
      instance.cleanup();
    },
  };
}
