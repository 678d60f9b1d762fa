/** A minimal renderer for component tests: React into a happy-dom document, with input helpers. */
import type { ReactNode } from 'react';
import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

export interface Rendered {
  container: HTMLElement;
  unmount: () => void;
}

export function render(ui: ReactNode): Rendered {
  const container = document.createElement('div');
  document.body.appendChild(container);
  let root: Root;
  act(() => {
    root = createRoot(container);
    root.render(ui);
  });
  return {
    container,
    unmount: () => {
      act(() => root.unmount());
      container.remove();
    },
  };
}

/** Types into an input, textarea or select as a user would (React sees the change). */
export function type(el: Element | null, value: string): void {
  if (!el) throw new Error('no such element');
  const proto =
    el instanceof HTMLTextAreaElement
      ? HTMLTextAreaElement.prototype
      : el instanceof HTMLSelectElement
        ? HTMLSelectElement.prototype
        : HTMLInputElement.prototype;
  act(() => {
    Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(el, value);
    el.dispatchEvent(new Event(el instanceof HTMLSelectElement ? 'change' : 'input', { bubbles: true }));
  });
}

export function click(el: Element | null): void {
  if (!el) throw new Error('no such element');
  act(() => (el as HTMLElement).click());
}

/** The form control labelled by the field of parameter `name`. */
export const control = (
  root: ParentNode,
  name: string,
): HTMLInputElement & HTMLTextAreaElement & HTMLSelectElement =>
  root.querySelector(`[name="${name}"]`) as HTMLInputElement & HTMLTextAreaElement & HTMLSelectElement;

/** The error text shown for a control (through aria-describedby). */
export function errorOf(el: Element): string | null {
  const ids = (el.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
  for (const id of ids) {
    const n = document.getElementById(id);
    if (n?.classList.contains('error')) return n.textContent;
  }
  return null;
}
