// Block Kit interactive elements as widgets: each has a node, getState() in Slack's
// view.state.values shape, setState(), validate() and an optional onChange callback.

import { el, clear } from './ui.js';
import { plainText, renderTextObject } from './mrkdwn.js';
import { directory, sortedChannels, sortedUsers } from './directory.js';

const TEXT_TYPES = { plain_text_input: 'text', email_text_input: 'email', url_text_input: 'url', number_input: 'text' };

/** A widget for element, or null when the type is not supported. */
export function createWidget(element, { onChange = () => {}, id } = {}) {
  const type = element.type;
  if (type in TEXT_TYPES) return textWidget(element, onChange, id);
  if (type === 'static_select' || type === 'external_select') return selectWidget(element, staticOptions(element), onChange, id, 'option');
  if (type === 'users_select') return selectWidget(element, userOptions(), onChange, id, 'selected_user', element.initial_user);
  if (type === 'conversations_select') return selectWidget(element, conversationOptions(element), onChange, id, 'selected_conversation', initialConversation(element));
  if (type === 'channels_select') return selectWidget(element, channelOptions(), onChange, id, 'selected_channel', element.initial_channel);
  if (type === 'multi_static_select' || type === 'multi_external_select') return multiWidget(element, staticOptions(element), onChange, id, 'selected_options', (element.initial_options || []).map((o) => o.value));
  if (type === 'multi_users_select') return multiWidget(element, userOptions(), onChange, id, 'selected_users', element.initial_users);
  if (type === 'multi_conversations_select') return multiWidget(element, conversationOptions(element), onChange, id, 'selected_conversations', element.initial_conversations || (element.default_to_current_conversation && directory.currentChannel ? [directory.currentChannel] : []));
  if (type === 'multi_channels_select') return multiWidget(element, channelOptions(), onChange, id, 'selected_channels', element.initial_channels);
  if (type === 'checkboxes') return choiceWidget(element, onChange, id, true);
  if (type === 'radio_buttons') return choiceWidget(element, onChange, id, false);
  if (type === 'datepicker') return pickerWidget(element, onChange, id, 'date', 'selected_date', element.initial_date);
  if (type === 'timepicker') return pickerWidget(element, onChange, id, 'time', 'selected_time', element.initial_time);
  if (type === 'datetimepicker') return dateTimeWidget(element, onChange, id);
  return null;
}

/** True when a widget state holds no answer (for required-field checks). */
export function isEmptyState(state) {
  if (!state) return true;
  for (const key of ['value', 'selected_option', 'selected_user', 'selected_conversation', 'selected_channel', 'selected_date', 'selected_time', 'selected_date_time']) {
    if (key in state) return state[key] === null || state[key] === undefined || state[key] === '';
  }
  for (const key of ['selected_options', 'selected_users', 'selected_conversations', 'selected_channels']) {
    if (key in state) return !state[key] || state[key].length === 0;
  }
  return true;
}

// ---------------------------------------------------------------- options

function staticOptions(element) {
  const options = [];
  if (Array.isArray(element.option_groups)) {
    for (const group of element.option_groups) {
      for (const option of group.options || []) options.push({ value: option.value, label: plainText(option.text), group: plainText(group.label), raw: option });
    }
  } else {
    for (const option of element.options || []) options.push({ value: option.value, label: plainText(option.text), raw: option });
  }
  return options;
}

function userOptions() {
  return sortedUsers().map((user) => ({ value: user.id, label: user.real_name || user.name || user.id }));
}

function conversationOptions(element) {
  const filter = element.filter || {};
  const include = Array.isArray(filter.include) && filter.include.length ? filter.include : ['public', 'private', 'im', 'mpim'];
  return sortedChannels().filter((channel) => {
    if (channel.is_im) return include.includes('im') && !filter.exclude_bot_users;
    return include.includes(channel.is_private ? 'private' : 'public');
  }).map(channelOption);
}

function channelOptions() {
  return sortedChannels().filter((channel) => !channel.is_im && !channel.is_private).map(channelOption);
}

function channelOption(channel) {
  const name = channel.name || channel.id;
  const label = channel.is_im ? `@${name}` : channel.is_private ? `🔒 ${name}` : `# ${name}`;
  return { value: channel.id, label };
}

function initialConversation(element) {
  if (element.initial_conversation) return element.initial_conversation;
  return element.default_to_current_conversation ? directory.currentChannel : null;
}

function placeholderText(element, fallback) {
  return element.placeholder ? plainText(element.placeholder) : fallback;
}

// ---------------------------------------------------------------- text and number

function textWidget(element, onChange, id) {
  const multiline = element.type === 'plain_text_input' && element.multiline;
  const input = multiline ? el('textarea', { rows: 4 }) : el('input', { type: TEXT_TYPES[element.type] });
  input.className = 'bk-text-input';
  if (id) input.id = id;
  if (element.type === 'number_input') input.inputMode = element.is_decimal_allowed ? 'decimal' : 'numeric';
  if (element.placeholder) input.placeholder = plainText(element.placeholder);
  if (element.max_length && element.type === 'plain_text_input') input.maxLength = element.max_length;
  if (element.initial_value !== undefined && element.initial_value !== null) input.value = String(element.initial_value);
  if (element.focus_on_load) input.autofocus = true;
  // Slack dispatches a text input's action on Enter, or per character when configured so.
  const triggers = (element.dispatch_action_config && element.dispatch_action_config.trigger_actions_on) || ['on_enter_pressed'];
  if (triggers.includes('on_character_entered')) input.addEventListener('input', () => onChange());
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !multiline && !event.ctrlKey && !event.metaKey && triggers.includes('on_enter_pressed')) {
      event.preventDefault();
      onChange();
    }
  });
  return {
    node: input,
    focus: () => input.focus(),
    getState: () => ({ type: element.type, value: input.value === '' ? null : input.value }),
    setState: (state) => { input.value = state && state.value != null ? String(state.value) : ''; },
    validate: () => validateText(element, input.value),
  };
}

function validateText(element, value) {
  if (value === '') return null;
  if (element.type === 'number_input') {
    const pattern = element.is_decimal_allowed ? /^-?\d+(\.\d+)?$/ : /^-?\d+$/;
    if (!pattern.test(value.trim())) return element.is_decimal_allowed ? 'Enter a number.' : 'Enter a whole number.';
    const number = Number(value);
    if (element.min_value !== undefined && number < Number(element.min_value)) return `Enter a number of at least ${element.min_value}.`;
    if (element.max_value !== undefined && number > Number(element.max_value)) return `Enter a number of at most ${element.max_value}.`;
    return null;
  }
  if (element.min_length && value.length < element.min_length) return `Enter at least ${element.min_length} characters.`;
  if (element.type === 'email_text_input' && !/^[^\s@]+@[^\s@]+$/.test(value)) return 'Enter an email address.';
  if (element.type === 'url_text_input' && !/^https?:\/\/\S+$/i.test(value)) return 'Enter a URL starting with http:// or https://.';
  return null;
}

// ---------------------------------------------------------------- single select

function selectWidget(element, options, onChange, id, stateKey, initial) {
  const select = el('select', { class: 'bk-select' });
  if (id) select.id = id;
  select.append(el('option', { value: '', text: placeholderText(element, 'Select an item') }));
  let group = null;
  let groupName;
  options.forEach((option, index) => {
    const node = el('option', { value: String(index), text: option.label });
    if (option.group !== undefined) {
      if (option.group !== groupName) {
        groupName = option.group;
        group = el('optgroup', { label: option.group });
        select.append(group);
      }
      group.append(node);
    } else select.append(node);
  });
  const indexOf = (value) => options.findIndex((option) => option.value === value);
  const set = (value) => {
    const index = value === null || value === undefined ? -1 : indexOf(value);
    select.value = index >= 0 ? String(index) : '';
  };
  if (stateKey === 'option') set(element.initial_option ? element.initial_option.value : null);
  else set(initial);
  select.addEventListener('change', () => onChange());
  const current = () => (select.value === '' ? null : options[Number(select.value)]);
  return {
    node: select,
    focus: () => select.focus(),
    getState: () => {
      const option = current();
      if (stateKey === 'option') return { type: element.type, selected_option: option ? optionPayload(option) : null };
      return { type: element.type, [stateKey]: option ? option.value : null };
    },
    setState: (state) => {
      if (!state) return;
      if (stateKey === 'option') set(state.selected_option ? state.selected_option.value : null);
      else set(state[stateKey]);
    },
    validate: () => null,
  };
}

function optionPayload(option) {
  if (option.raw) return { ...option.raw, text: option.raw.text && typeof option.raw.text === 'object' ? option.raw.text : { type: 'plain_text', text: option.label } };
  return { value: option.value, text: { type: 'plain_text', text: option.label } };
}

// ---------------------------------------------------------------- multi select (chips + filter menu)

function multiWidget(element, options, onChange, id, stateKey, initial) {
  let selected = (initial || []).filter((value) => options.some((option) => option.value === value));
  let active = 0;
  const chips = el('span', { class: 'multi-chips' });
  const input = el('input', { type: 'text', class: 'multi-input', autocomplete: 'off', role: 'combobox', 'aria-expanded': 'false' });
  if (id) input.id = id;
  const menu = el('div', { class: 'multi-menu', role: 'listbox', hidden: true });
  const box = el('div', { class: 'multi', onclick: () => { input.focus(); open(true); } }, chips, input, menu);
  const max = element.max_selected_items || Infinity;

  const label = (value) => (options.find((option) => option.value === value) || { label: value }).label;
  const visible = () => {
    const query = input.value.trim().toLowerCase();
    return options.filter((option) => !selected.includes(option.value) && (!query || option.label.toLowerCase().includes(query)));
  };
  const renderChips = () => {
    clear(chips);
    for (const value of selected) {
      chips.append(el('span', { class: 'chip' }, el('span', { text: label(value) }),
        el('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${label(value)}`, text: '×', onclick: (event) => { event.stopPropagation(); remove(value); } })));
    }
    input.placeholder = selected.length ? '' : placeholderText(element, 'Select options');
  };
  const renderMenu = () => {
    clear(menu);
    const items = visible();
    if (active >= items.length) active = Math.max(0, items.length - 1);
    if (selected.length >= max) menu.append(el('div', { class: 'multi-empty', text: `You can pick at most ${max}.` }));
    else if (!items.length) menu.append(el('div', { class: 'multi-empty', text: 'No matches' }));
    else items.forEach((option, index) => {
      menu.append(el('div', { class: index === active ? 'multi-option active' : 'multi-option', role: 'option', text: option.label,
        onmousedown: (event) => { event.preventDefault(); add(option.value); } }));
    });
  };
  const open = (yes) => {
    menu.hidden = !yes;
    input.setAttribute('aria-expanded', String(yes));
    if (yes) renderMenu();
  };
  const add = (value) => {
    if (selected.length >= max || selected.includes(value)) return;
    selected = [...selected, value];
    input.value = '';
    renderChips();
    renderMenu();
    onChange();
  };
  const remove = (value) => {
    selected = selected.filter((item) => item !== value);
    renderChips();
    if (!menu.hidden) renderMenu();
    onChange();
  };
  input.addEventListener('blur', () => open(false));
  input.addEventListener('input', () => { active = 0; open(true); });
  input.addEventListener('keydown', (event) => {
    const items = visible();
    if (event.key === 'ArrowDown' && menu.hidden) { open(true); event.preventDefault(); }
    else if (event.key === 'ArrowDown') { active = Math.min(items.length - 1, active + 1); renderMenu(); event.preventDefault(); }
    else if (event.key === 'ArrowUp') { active = Math.max(0, active - 1); renderMenu(); event.preventDefault(); }
    else if (event.key === 'Enter' && !event.ctrlKey && !event.metaKey && !menu.hidden) { if (items[active]) add(items[active].value); event.preventDefault(); }
    else if (event.key === 'Backspace' && input.value === '' && selected.length) remove(selected[selected.length - 1]);
    else if (event.key === 'Escape' && !menu.hidden) { open(false); event.stopPropagation(); }
  });
  renderChips();
  return {
    node: box,
    focus: () => input.focus(),
    getState: () => {
      if (stateKey === 'selected_options') {
        return { type: element.type, selected_options: selected.map((value) => optionPayload(options.find((option) => option.value === value))) };
      }
      return { type: element.type, [stateKey]: [...selected] };
    },
    setState: (state) => {
      if (!state) return;
      const values = stateKey === 'selected_options' ? (state.selected_options || []).map((o) => o.value) : state[stateKey] || [];
      selected = values.filter((value) => options.some((option) => option.value === value));
      renderChips();
    },
    validate: () => null,
  };
}

// ---------------------------------------------------------------- checkboxes and radio buttons

let choiceCounter = 0;

function choiceWidget(element, onChange, id, multiple) {
  const name = `bk-choice-${++choiceCounter}`;
  const options = element.options || [];
  const initial = multiple ? (element.initial_options || []).map((o) => o.value) : element.initial_option ? [element.initial_option.value] : [];
  const inputs = [];
  const box = el('div', { class: 'bk-choices', role: multiple ? 'group' : 'radiogroup' });
  if (id) box.id = id;
  options.forEach((option, index) => {
    const input = el('input', { type: multiple ? 'checkbox' : 'radio', name, value: String(index), checked: initial.includes(option.value) });
    input.addEventListener('change', () => onChange());
    inputs.push(input);
    box.append(el('label', { class: 'bk-choice' }, input,
      el('span', { class: 'bk-choice-text' }, renderTextObject(option.text, { inline: true }),
        option.description ? el('span', { class: 'bk-choice-desc' }, renderTextObject(option.description, { inline: true })) : null)));
  });
  const chosen = () => inputs.filter((input) => input.checked).map((input) => options[Number(input.value)]);
  return {
    node: box,
    focus: () => inputs[0] && inputs[0].focus(),
    getState: () => (multiple
      ? { type: element.type, selected_options: chosen() }
      : { type: element.type, selected_option: chosen()[0] || null }),
    setState: (state) => {
      if (!state) return;
      const values = multiple ? (state.selected_options || []).map((o) => o.value) : state.selected_option ? [state.selected_option.value] : [];
      inputs.forEach((input) => { input.checked = values.includes(options[Number(input.value)].value); });
    },
    validate: () => null,
  };
}

// ---------------------------------------------------------------- date and time

function pickerWidget(element, onChange, id, inputType, stateKey, initial) {
  const input = el('input', { type: inputType, class: 'bk-text-input bk-picker' });
  if (id) input.id = id;
  if (initial) input.value = initial;
  input.addEventListener('change', () => onChange());
  return {
    node: input,
    focus: () => input.focus(),
    getState: () => ({ type: element.type, [stateKey]: input.value || null }),
    setState: (state) => { if (state) input.value = state[stateKey] || ''; },
    validate: () => null,
  };
}

function dateTimeWidget(element, onChange, id) {
  const input = el('input', { type: 'datetime-local', class: 'bk-text-input bk-picker' });
  if (id) input.id = id;
  const toLocal = (seconds) => {
    const date = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  };
  if (element.initial_date_time) input.value = toLocal(element.initial_date_time);
  input.addEventListener('change', () => onChange());
  return {
    node: input,
    focus: () => input.focus(),
    getState: () => ({ type: element.type, selected_date_time: input.value ? Math.floor(new Date(input.value).getTime() / 1000) : null }),
    setState: (state) => { if (state && state.selected_date_time) input.value = toLocal(state.selected_date_time); },
    validate: () => null,
  };
}
