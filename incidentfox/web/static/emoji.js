// Slack emoji shortcodes the bot and people commonly use. Unknown shortcodes stay as typed.

export const EMOJI = {
  white_check_mark: '✅', heavy_check_mark: '✔️', ballot_box_with_check: '☑️', x: '❌', negative_squared_cross_mark: '❎',
  warning: '⚠️', fire: '🔥', mag: '🔍', mag_right: '🔎', hourglass: '⌛', hourglass_flowing_sand: '⏳',
  rotating_light: '🚨', thumbsup: '👍', '+1': '👍', thumbsdown: '👎', '-1': '👎', robot_face: '🤖',
  wrench: '🔧', hammer_and_wrench: '🛠️', bulb: '💡', red_circle: '🔴', large_green_circle: '🟢',
  large_yellow_circle: '🟡', large_orange_circle: '🟠', large_blue_circle: '🔵', white_circle: '⚪', black_circle: '⚫',
  arrows_counterclockwise: '🔄', stop_button: '⏹️', arrow_forward: '▶️', double_vertical_bar: '⏸️', pause_button: '⏸️',
  memo: '📝', link: '🔗', pushpin: '📌', round_pushpin: '📍', construction: '🚧', clipboard: '📋',
  eyes: '👀', tada: '🎉', rocket: '🚀', sparkles: '✨', boom: '💥', zap: '⚡', bug: '🐛', lock: '🔒', unlock: '🔓',
  closed_lock_with_key: '🔐', key: '🔑', bell: '🔔', no_bell: '🔕', speech_balloon: '💬', thought_balloon: '💭',
  information_source: 'ℹ️', question: '❓', grey_question: '❔', exclamation: '❗', heavy_exclamation_mark: '❗',
  no_entry: '⛔', no_entry_sign: '🚫', stopwatch: '⏱️', alarm_clock: '⏰', timer_clock: '⏲️', calendar: '📆',
  chart_with_upwards_trend: '📈', chart_with_downwards_trend: '📉', bar_chart: '📊', package: '📦', gear: '⚙️',
  computer: '💻', globe_with_meridians: '🌐', cloud: '☁️', books: '📚', book: '📖', page_facing_up: '📄',
  scroll: '📜', file_folder: '📁', open_file_folder: '📂', inbox_tray: '📥', outbox_tray: '📤', email: '📧',
  wave: '👋', pray: '🙏', clap: '👏', muscle: '💪', point_right: '👉', point_left: '👈', ok_hand: '👌',
  slightly_smiling_face: '🙂', smile: '😄', grinning: '😀', sweat_smile: '😅', thinking_face: '🤔', confused: '😕',
  disappointed: '😞', scream: '😱', sob: '😭', heart: '❤️', broken_heart: '💔', star: '⭐', fox_face: '🦊',
  shield: '🛡️', test_tube: '🧪', microscope: '🔬', satellite: '📡', traffic_light: '🚦', vertical_traffic_light: '🚦',
  checkered_flag: '🏁', triangular_flag_on_post: '🚩', arrow_right: '➡️', arrow_left: '⬅️', arrow_up: '⬆️',
  arrow_down: '⬇️', leftwards_arrow_with_hook: '↩️', arrow_right_hook: '↪️', repeat: '🔁', recycle: '♻️',
  heavy_plus_sign: '➕', heavy_minus_sign: '➖', hash: '#️⃣', new: '🆕', sos: '🆘', octagonal_sign: '🛑',
  skull: '💀', ghost: '👻', snail: '🐌', turtle: '🐢', ambulance: '🚑', fire_engine: '🚒', hospital: '🏥',
  mailbox: '📫', mega: '📣', loudspeaker: '📢', loud_sound: '🔊', mute: '🔇', spiral_note_pad: '🗒️',
  card_index_dividers: '🗂️', label: '🏷️', bookmark: '🔖', paperclip: '📎', scissors: '✂️', pencil2: '✏️',
  pencil: '📝', heavy_multiplication_x: '✖️', small_red_triangle: '🔺', small_red_triangle_down: '🔻',
  large_blue_diamond: '🔷', large_orange_diamond: '🔶', white_large_square: '⬜', black_large_square: '⬛',
  green_heart: '💚', yellow_heart: '💛', blue_heart: '💙', purple_heart: '💜', hugging_face: '🤗',
  face_with_monocle: '🧐', partying_face: '🥳', man_shrugging: '🤷‍♂️', woman_shrugging: '🤷‍♀️', shrug: '🤷',
};

const SHORTCODE = /:([a-z0-9_+-]+)(?:::skin-tone-[2-6])?:/g;

/** Replace known :shortcodes: with their unicode; unknown ones are left exactly as written. */
export function emojify(text) {
  if (!text || text.indexOf(':') < 0) return text;
  return text.replace(SHORTCODE, (whole, name) => EMOJI[name] || whole);
}
