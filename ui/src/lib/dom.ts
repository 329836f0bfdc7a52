// Building the page without HTML strings. Every piece of text, above all text from the
// upstream clinical system, becomes a Text node: there is no path here to innerHTML, so a
// patient called "<script>" is shown as exactly that.

export type Child = Node | string | number | null | undefined | false | Child[];

type Handler = (e: Event) => void;
export interface Props {
  class?: string;
  /** Any attribute: values are set with setAttribute, never parsed as HTML. */
  attrs?: Record<string, string | number | boolean | null | undefined>;
  on?: Record<string, Handler>;
  /** A form control's value or a checkbox's state. */
  value?: string;
  checked?: boolean;
  disabled?: boolean;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    for (const [k, v] of Object.entries(props.attrs ?? {})) {
      if (v === null || v === undefined || v === false) continue;
      if (/^on/i.test(k)) throw new Error(`event attribute ${k}: use props.on`);
      el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const [k, fn] of Object.entries(props.on ?? {})) el.addEventListener(k, fn);
    if (props.value !== undefined) (el as HTMLInputElement).value = props.value;
    if (props.checked !== undefined) (el as HTMLInputElement).checked = props.checked;
    if (props.disabled !== undefined) (el as HTMLButtonElement).disabled = props.disabled;
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces everything inside `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A text-only element: the string is assigned to textContent. */
export function text<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  value: string,
  cls?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  el.textContent = value;
  return el;
}

let nextId = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** Waits for the browser to paint (used before moving focus into freshly built content). */
export function afterPaint(): Promise<void> {
  return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r())));
}
