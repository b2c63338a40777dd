/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Building the page: every value from the API becomes a text node, never HTML.

export const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
};

type Child = Node | string | null | undefined | false;
type Props = Record<string, string | number | boolean | ((event: Event) => void) | undefined>;

/**
 * `h('a', { href: '#x' }, 'text')`: an element with properties (`on…` are listeners; `aria-…`,
 * `data-…`, `role` and `scope` attributes) and children, strings as text.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (/^(aria-|data-)|^(role|scope|for)$/.test(key)) node.setAttribute(key, String(value));
    else (node as unknown as Record<string, unknown>)[key] = value;
  }
  node.append(...children.filter((child): child is Node | string => !!child));
  return node;
}

/** A table row of text cells (or nodes). */
export function row(cells: Child[], props: Props = {}): HTMLTableRowElement {
  return h('tr', props, ...cells.map((cell) => h('td', {}, cell)));
}

/** Shows what went wrong in the page's alert paragraph; clears it when given nothing. */
export function report(id: string, problem?: unknown): void {
  element(id).textContent =
    problem === undefined ? '' : problem instanceof Error ? problem.message : String(problem);
}

const relativeFormat = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1_000],
];

/** "in 5 minutes", "2 hours ago": the time as an operator reads it. */
export function relative(iso: string): string {
  const delta = Date.parse(iso) - Date.now();
  const [unit, size] = UNITS.find(([, ms]) => Math.abs(delta) >= ms) ?? UNITS[UNITS.length - 1]!;
  return relativeFormat.format(Math.round(delta / size), unit);
}

/** A relative time with the exact one on hover and for assistive technology. */
export function time(iso: string | null, none = '—'): Node | string {
  if (iso === null) return none;
  return h('time', { dateTime: iso, title: iso }, relative(iso));
}

/** What to ask before something that cannot be undone, and the confirming button's label. */
export interface Question {
  title: string;
  text: string;
  confirm: string;
}

/**
 * Asks first (a modal dialog: focus stays in it, Escape cancels) and runs `action` only on the
 * confirming button; a failure is shown in the alert paragraph `#errorId`.
 */
export function afterConfirmation(
  question: Question,
  errorId: string,
  action: () => Promise<unknown>,
): void {
  const dialog = element<HTMLDialogElement>('confirm');
  element('confirm-title').textContent = question.title;
  element('confirm-text').textContent = question.text;
  element('confirm-ok').textContent = question.confirm;
  dialog.returnValue = '';
  dialog.addEventListener(
    'close',
    () => {
      if (dialog.returnValue !== 'confirm') return;
      action().catch((problem: unknown) => report(errorId, problem));
    },
    { once: true },
  );
  dialog.showModal();
}

/** Shows a secret (an API key, a webhook secret) once, selected, with its copy button. */
export function showOnce(boxId: string, inputId: string, value: string): void {
  element(boxId).hidden = false;
  const input = element<HTMLInputElement>(inputId);
  input.value = value;
  input.focus();
  input.select();
}

// Every "Copy" button names the input it copies (data-copy).
document.addEventListener('click', (event) => {
  const button = (event.target as Element | null)?.closest<HTMLButtonElement>('[data-copy]');
  if (!button) return;
  const input = element<HTMLInputElement>(button.dataset.copy!);
  input.select();
  const done = () => {
    const label = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => (button.textContent = label), 1500);
  };
  navigator.clipboard.writeText(input.value).then(done, () => {
    // No clipboard (plain http off loopback): the value is selected for Ctrl+C.
    button.textContent = 'Selected: press Ctrl+C';
  });
});
