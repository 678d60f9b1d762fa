/** Small building blocks shared by every page. */
import { type ReactNode, useEffect, useId, useRef, useState } from 'react';
import { ApiError, isMissingEndpoint } from '../api/client.ts';
import type { Pagination } from '../api/types.ts';
import { nodeLook } from '../graph/look.ts';
import { formatTime, relativeTime } from '../lib/format.ts';

export function StatusBadge({ status }: { status: string }) {
  const look = nodeLook(status);
  return (
    <span
      className={`badge${look.active ? ' active' : ''}`}
      style={{ ['--c' as string]: look.color }}
      data-status={status}
    >
      <span className="dot" aria-hidden="true" />
      {status}
    </span>
  );
}

export function Time({ iso, relative = false }: { iso: string | null | undefined; relative?: boolean }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={new Date(iso).toLocaleString()} className="nowrap">
      {relative ? relativeTime(iso) : formatTime(iso)}
    </time>
  );
}

/** An error where it happened: the API's message, its problems, and what to do about a missing endpoint. */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  let heading = title ?? 'Something went wrong';
  let message = String((error as Error)?.message ?? error);
  let problems: { path: string; message: string }[] = [];
  if (error instanceof ApiError) {
    problems = error.problems;
    if (isMissingEndpoint(error)) {
      heading = title ?? 'Not available on this server';
      message = `This server does not offer this yet (${error.message}).`;
    } else if (error.status === 403) {
      heading = title ?? 'Not permitted';
    } else if (error.status === 404) {
      heading = title ?? 'Not found';
    } else if (error.status === 0) {
      heading = title ?? 'Cannot reach the server';
    }
  }
  return (
    <div className="alert error" role="alert">
      <strong>{heading}.</strong> {message}
      {problems.length > 0 && (
        <ul>
          {problems.slice(0, 20).map((p, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: problems have no identity
            <li key={i}>
              {p.path && p.path !== '/' ? <code>{p.path}</code> : null} {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      {what}…
    </div>
  );
}

export function Empty({
  title,
  children,
  action,
}: {
  title: string;
  children?: ReactNode;
  action?: ReactNode;
}) {
  return (
    <div className="empty">
      <h2>{title}</h2>
      {children && <p>{children}</p>}
      {action}
    </div>
  );
}

export function Pager({
  pagination,
  onPage,
}: {
  pagination: Pagination | undefined;
  onPage: (p: number) => void;
}) {
  if (!pagination || pagination.total_pages <= 1)
    return pagination ? (
      <p className="muted small">
        {pagination.total_items} item{pagination.total_items === 1 ? '' : 's'}
      </p>
    ) : null;
  const { page, total_pages, total_items } = pagination;
  return (
    <nav className="row" aria-label="Pages" style={{ marginTop: 10 }}>
      <button type="button" className="small" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        ← Previous
      </button>
      <span className="muted small">
        Page {page} of {total_pages} · {total_items} items
      </span>
      <button type="button" className="small" disabled={page >= total_pages} onClick={() => onPage(page + 1)}>
        Next →
      </button>
    </nav>
  );
}

export function Tabs<T extends string>({
  tabs,
  value,
  onChange,
  label,
}: {
  tabs: { id: T; label: ReactNode }[];
  value: T;
  onChange: (t: T) => void;
  label: string;
}) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const move = (i: number) => {
    const n = (i + tabs.length) % tabs.length;
    onChange(tabs[n]!.id);
    refs.current[n]?.focus();
  };
  return (
    <div className="tabs" role="tablist" aria-label={label}>
      {tabs.map((t, i) => (
        <button
          key={t.id}
          ref={(el) => {
            refs.current[i] = el;
          }}
          type="button"
          role="tab"
          aria-selected={t.id === value}
          tabIndex={t.id === value ? 0 : -1}
          onClick={() => onChange(t.id)}
          onKeyDown={(e) => {
            if (e.key === 'ArrowRight') move(i + 1);
            if (e.key === 'ArrowLeft') move(i - 1);
          }}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

/** A modal dialog (the native element: focus is trapped, Escape closes). */
export function Dialog({
  open,
  title,
  onClose,
  children,
  footer,
  wide,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    }
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onClose={onClose}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      style={wide ? { width: 'min(960px, 96vw)' } : undefined}
    >
      {open && (
        <>
          <header>
            <h2 id={titleId} style={{ margin: 0 }}>
              {title}
            </h2>
            <button type="button" className="small" onClick={onClose} aria-label="Close">
              ✕
            </button>
          </header>
          <div className="body">{children}</div>
          {footer && <footer>{footer}</footer>}
        </>
      )}
    </dialog>
  );
}

/** A button that asks before doing something destructive; shows the error of the attempt. */
export function ConfirmButton({
  label,
  question,
  onConfirm,
  className = 'danger',
  confirmLabel,
  disabled,
}: {
  label: string;
  question: ReactNode;
  onConfirm: () => Promise<unknown>;
  className?: string;
  confirmLabel?: string;
  disabled?: boolean;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      setOpen(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={className} onClick={() => setOpen(true)} disabled={disabled}>
        {label}
      </button>
      <Dialog
        open={open}
        title={label}
        onClose={() => setOpen(false)}
        footer={
          <>
            <button type="button" onClick={() => setOpen(false)}>
              Keep it
            </button>
            <button
              type="button"
              className={className.includes('danger') ? 'danger' : 'primary'}
              onClick={go}
              disabled={busy}
            >
              {busy ? 'Working…' : (confirmLabel ?? label)}
            </button>
          </>
        }
      >
        <ErrorBox error={error} />
        <div>{question}</div>
      </Dialog>
    </>
  );
}

export function Props({ items }: { items: [ReactNode, ReactNode][] }) {
  return (
    <dl className="props">
      {items.map(([k, v], i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: static list
        <div key={i} style={{ display: 'contents' }}>
          <dt>{k}</dt>
          <dd>{v ?? <span className="muted">—</span>}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Tags({ tags }: { tags: string[] }) {
  if (!tags.length) return null;
  return (
    <>
      {tags.map((t) => (
        <span className="tag" key={t}>
          {t}
        </span>
      ))}
    </>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="small"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => {
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        });
      }}
    >
      {done ? 'Copied' : label}
    </button>
  );
}

/** A labelled form field with help and error text wired for screen readers. */
export function Field({
  label,
  help,
  error,
  required,
  children,
}: {
  label: ReactNode;
  help?: ReactNode;
  error?: string;
  required?: boolean;
  children: (ids: { id: string; describedBy: string | undefined; invalid: boolean }) => ReactNode;
}) {
  const id = useId();
  const helpId = `${id}-help`;
  const errId = `${id}-err`;
  const describedBy = [help ? helpId : '', error ? errId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>
        {label}
        {required && (
          <span className="req" aria-hidden="true">
            *
          </span>
        )}
      </label>
      {children({ id, describedBy, invalid: !!error })}
      {help && (
        <div className="help" id={helpId}>
          {help}
        </div>
      )}
      {error && (
        <div className="error" id={errId}>
          {error}
        </div>
      )}
    </div>
  );
}

/** Whether a live stream is connected, for the corner of a page. */
export function LiveIndicator({ state, error }: { state: string; error?: unknown }) {
  const on = state === 'live';
  const off = state === 'closed' && !!error;
  const text = on
    ? 'live'
    : off
      ? 'live updates unavailable'
      : state === 'ended'
        ? 'final'
        : state === 'reconnecting'
          ? 'reconnecting…'
          : 'connecting…';
  return (
    <span
      className={`live${on ? ' on' : off ? ' off' : ''}`}
      title={error instanceof Error ? error.message : undefined}
    >
      {text}
    </span>
  );
}

/** What the colours of the graph and the status badges mean. */
export function GraphLegend() {
  const items = ['not_run', 'running', 'asking', 'paused', 'succeeded', 'failed', 'canceled'];
  return (
    <div className="legend">
      {items.map((s) => (
        <span key={s} style={{ ['--c' as string]: nodeLook(s).color }}>
          {nodeLook(s).label}
        </span>
      ))}
    </div>
  );
}
