/**
 * A plain-text code editor: a textarea with line numbers and per-line markers (errors, warnings).
 * Tab indents by two spaces; press Escape first to move the focus on with Tab instead.
 */
import { forwardRef, useImperativeHandle, useRef, useState } from 'react';

export interface CodeEditorHandle {
  /** Puts the caret at the start of a line (1-based) and scrolls it into view. */
  goToLine: (line: number) => void;
}

export interface CodeEditorProps {
  value: string;
  onChange: (v: string) => void;
  markers?: Map<number, { severity: 'error' | 'warning'; message: string }>;
  label: string;
  readOnly?: boolean;
  minRows?: number;
}

const LINE_HEIGHT = 19;

export const CodeEditor = forwardRef<CodeEditorHandle, CodeEditorProps>(function CodeEditor(
  { value, onChange, markers, label, readOnly, minRows = 22 },
  ref,
) {
  const ta = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const [escaped, setEscaped] = useState(false);
  const lines = value.split('\n').length;
  useImperativeHandle(ref, () => ({
    goToLine(line: number) {
      const t = ta.current;
      if (!t) return;
      const parts = t.value.split('\n');
      let pos = 0;
      for (let i = 0; i < Math.min(line - 1, parts.length); i++) pos += parts[i]!.length + 1;
      t.focus();
      t.setSelectionRange(pos, pos + (parts[line - 1]?.length ?? 0));
      t.scrollTop = Math.max(0, (line - 4) * LINE_HEIGHT);
    },
  }));
  return (
    <div className="editor" style={{ minHeight: minRows * LINE_HEIGHT + 18 }}>
      <div className="gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: lines }, (_, i) => {
          const m = markers?.get(i + 1);
          return (
            <div
              // biome-ignore lint/suspicious/noArrayIndexKey: one element per line number
              key={i}
              className={m ? (m.severity === 'error' ? 'err' : 'warn') : undefined}
              title={m?.message}
            >
              {m ? (m.severity === 'error' ? '✕ ' : '! ') : ''}
              {i + 1}
            </div>
          );
        })}
      </div>
      <textarea
        ref={ta}
        aria-label={label}
        value={value}
        readOnly={readOnly}
        spellCheck={false}
        autoCapitalize="off"
        autoCorrect="off"
        wrap="off"
        onChange={(e) => onChange(e.target.value)}
        onScroll={(e) => {
          if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
        }}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            setEscaped(true);
            return;
          }
          if (e.key === 'Tab' && !escaped && !readOnly && !e.shiftKey) {
            e.preventDefault();
            const t = e.currentTarget;
            const { selectionStart: s, selectionEnd: end } = t;
            const next = `${t.value.slice(0, s)}  ${t.value.slice(end)}`;
            onChange(next);
            requestAnimationFrame(() => t.setSelectionRange(s + 2, s + 2));
            return;
          }
          setEscaped(false);
        }}
      />
    </div>
  );
});
