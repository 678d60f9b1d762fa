/** A JSON viewer: a collapsible tree (keyboard-operable), or the raw text; with a copy button. */
import { useState } from 'react';
import { pretty } from '../lib/format.ts';
import { CopyButton } from './ui.tsx';

function Scalar({ v }: { v: unknown }) {
  if (v === null) return <span className="z">null</span>;
  if (typeof v === 'string') return <span className="s">{JSON.stringify(v)}</span>;
  if (typeof v === 'number') return <span className="n">{String(v)}</span>;
  if (typeof v === 'boolean') return <span className="b">{String(v)}</span>;
  return <span>{String(v)}</span>;
}

function Node({ name, value, depth }: { name?: string; value: unknown; depth: number }) {
  const isArr = Array.isArray(value);
  const isObj = typeof value === 'object' && value !== null;
  const [open, setOpen] = useState(depth < 2);
  const key = name !== undefined ? <span className="k">{name}: </span> : null;
  if (!isObj)
    return (
      <li>
        {key}
        <Scalar v={value} />
      </li>
    );
  const entries = isArr
    ? (value as unknown[]).map((v, i) => [String(i), v] as const)
    : Object.entries(value as object);
  const [o, c] = isArr ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0)
    return (
      <li>
        {key}
        {o}
        {c}
      </li>
    );
  return (
    <li>
      <button type="button" className="toggle" aria-expanded={open} onClick={() => setOpen(!open)}>
        {open ? '▾' : '▸'}
      </button>
      {key}
      {o}
      {!open && (
        <button type="button" className="link small" onClick={() => setOpen(true)}>
          {' '}
          {entries.length} {isArr ? 'items' : 'keys'} {c}
        </button>
      )}
      {open && (
        <>
          <ul>
            {entries.map(([k, v]) => (
              <Node key={k} name={isArr ? undefined : k} value={v} depth={depth + 1} />
            ))}
          </ul>
          {c}
        </>
      )}
    </li>
  );
}

export function JsonView({ value, label }: { value: unknown; label?: string }) {
  const [raw, setRaw] = useState(false);
  const text = pretty(value);
  return (
    <div>
      <div className="row" style={{ justifyContent: 'space-between', marginBottom: 6 }}>
        {label ? <h3 style={{ margin: 0 }}>{label}</h3> : <span />}
        <span className="row">
          <button type="button" className="small" onClick={() => setRaw(!raw)} aria-pressed={raw}>
            {raw ? 'Tree' : 'Raw'}
          </button>
          <CopyButton text={text} />
        </span>
      </div>
      {raw || typeof value !== 'object' || value === null ? (
        <pre className="code">{text}</pre>
      ) : (
        <div className="json">
          <ul style={{ paddingLeft: 0 }}>
            <Node value={value} depth={0} />
          </ul>
        </div>
      )}
    </div>
  );
}
