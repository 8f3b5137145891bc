// The App Home of IncidentFox: opening it fires app_home_opened; the bot publishes the view.

import { el, clear, sameJson } from './ui.js';
import { uiApi } from './api.js';
import { renderBlocks } from './blockkit.js';

export class HomePane {
  constructor(host, { onAction }) {
    this.host = host;
    this.onAction = onAction;
    this.view = null;
    this.published = 0; // bumps on every publish, so an older GET never overwrites a newer view
    this.waiting = null;
    this.render();
  }

  async open() {
    this.render();
    try {
      await uiApi('POST', '/home/open');
    } catch (error) {
      this.showNote(`Could not open Home: ${error.message}`);
      return;
    }
    await this.refresh();
  }

  async refresh() {
    const before = this.published;
    try {
      const data = await uiApi('GET', '/home');
      if (this.published === before && data.view) this.setView(data.view);
      else if (!this.view) this.waitNote();
    } catch (error) {
      this.showNote(`Could not load Home: ${error.message}`);
    }
  }

  publish(view) {
    this.published += 1;
    this.setView(view);
  }

  setView(view) {
    if (this.view && sameJson(this.view, view)) return; // the same view again: keep the DOM
    this.view = view;
    this.render();
  }

  waitNote() {
    clearTimeout(this.waiting);
    this.waiting = setTimeout(() => {
      if (!this.view) this.showNote('IncidentFox has not published its Home yet. It appears here as soon as it does.');
    }, 4000);
  }

  showNote(text) {
    if (this.view) return;
    clear(this.host);
    this.host.append(el('div', { class: 'home-note', text }));
  }

  render() {
    const scroll = this.host.scrollTop;
    clear(this.host);
    if (!this.view) {
      this.host.append(el('div', { class: 'home-note' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Loading Home…'));
      return;
    }
    const view = this.view;
    const blocks = renderBlocks(view.blocks, { surface: 'home', onAction: (action) => this.onAction(view, action) });
    this.host.append(el('div', { class: 'home-view', 'data-testid': 'home-view', 'data-view-id': view.id || '' }, blocks));
    this.host.scrollTop = scroll;
  }
}
