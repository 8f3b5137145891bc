// Who and where: the users and channels from bootstrap, shared by the renderers.

export const directory = {
  me: null, // {id, name}
  bot: null, // {user_id, name}
  team: null, // {id, name}
  users: new Map(), // id -> {id, name, real_name, is_bot}
  channels: new Map(), // id -> {id, name, is_private, is_im, topic}
  currentChannel: null, // the channel the workspace shows, for default_to_current_conversation
};

export function loadDirectory(boot) {
  directory.me = boot.me || null;
  directory.bot = boot.bot || null;
  directory.team = boot.team || null;
  directory.users.clear();
  for (const user of boot.users || []) directory.users.set(user.id, user);
  directory.channels.clear();
  for (const channel of boot.channels || []) directory.channels.set(channel.id, channel);
}

export function addChannel(channel) {
  if (channel && channel.id) directory.channels.set(channel.id, { ...directory.channels.get(channel.id), ...channel });
}

/** The name people see for a user id: real name, then handle, then the id itself. */
export function userName(id) {
  const user = directory.users.get(id);
  if (user) return user.real_name || user.name || id;
  if (directory.bot && id === directory.bot.user_id) return directory.bot.name || id;
  return id;
}

/** The handle used after "@" in mentions. */
export function userHandle(id) {
  const user = directory.users.get(id);
  if (directory.bot && id === directory.bot.user_id) return directory.bot.name || (user && user.name) || id;
  if (user) return user.real_name || user.name || id;
  return id;
}

export function channelName(id) {
  const channel = directory.channels.get(id);
  return channel ? channel.name || id : null;
}

export function isBotUser(id) {
  if (directory.bot && id === directory.bot.user_id) return true;
  const user = directory.users.get(id);
  return Boolean(user && user.is_bot);
}

/** Users for pickers: the bot first, then people by name. */
export function sortedUsers() {
  const all = [...directory.users.values()];
  const botId = directory.bot && directory.bot.user_id;
  if (botId && !directory.users.has(botId)) {
    all.push({ id: botId, name: directory.bot.name, real_name: directory.bot.name, is_bot: true });
  }
  return all.sort((a, b) => {
    if (a.id === botId) return -1;
    if (b.id === botId) return 1;
    return (a.real_name || a.name || a.id).localeCompare(b.real_name || b.name || b.id);
  });
}

export function sortedChannels() {
  return [...directory.channels.values()].sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
}
