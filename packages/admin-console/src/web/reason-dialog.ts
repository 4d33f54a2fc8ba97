import { h } from './dom.js';

/**
 * Asks for the reason of an admin action in a modal dialog (the reason goes
 * to the server's audit log). Resolves with the reason, or null when cancelled.
 */
export function askReason(action: string, target: string): Promise<string | null> {
  return new Promise((resolve) => {
    const reason = h('textarea', { id: 'reason', name: 'reason', required: true, maxlength: 1000, rows: 3 });
    const confirm = h('button', { type: 'submit', value: 'confirm' }, action);
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const form = h(
      'form',
      { method: 'dialog' },
      h('h2', { id: 'reason-title' }, `${action}: ${target}`),
      h('label', { for: 'reason' }, 'Reason (kept in the audit log)'),
      reason,
      h('div', { class: 'actions' }, confirm, cancel),
    );
    const dialog = h('dialog', { 'aria-labelledby': 'reason-title', id: 'reason-dialog' }, form);
    let answer: string | null = null;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (reason.value.trim() === '') {
        reason.focus();
        return;
      }
      answer = reason.value.trim();
      dialog.close();
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}
