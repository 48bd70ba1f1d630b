// Starts the npm telegram-test-api emulator (4.2.1) on 127.0.0.1:<port> with three shims that
// python-telegram-bot 22 needs (see ../shared/PEERS.md):
//   - getMe lacks `is_bot`;
//   - sendMessage answers `date` in milliseconds and without `from`;
//   - callback updates lack `chat_instance`.
// Usage: node start.js <port>   (NODE_PATH must reach the installed telegram-test-api)
'use strict';
const sendResult = require('telegram-test-api/lib/modules/sendResult');
const TelegramServer = require('telegram-test-api');

const BOT = { id: 666, is_bot: true, first_name: 'Kanal', username: 'TestNameBot' };

function shim(path, data) {
  if (!data || data.ok !== true) return data;
  const method = path.split('/').pop();
  if (method === 'getMe') {
    data.result = { ...data.result, ...BOT };
  } else if (method === 'sendMessage' && data.result) {
    const r = data.result;
    if (r.date > 1e11) r.date = Math.floor(r.date / 1000);
    r.from = BOT;
  } else if (method === 'getUpdates' && Array.isArray(data.result) && path.startsWith('/bot')) {
    for (const u of data.result) {
      if (u.callback_query && !u.callback_query.chat_instance) {
        u.callback_query.chat_instance = String(u.callback_query.message?.chat?.id ?? 0);
      }
    }
  }
  return data;
}

// The emulator installs sendResult as its first middleware: wrap it so that every JSON answer
// passes through shim() (the exports object is read when the server is constructed).
const original = sendResult.sendResult;
sendResult.sendResult = (req, res, next) => {
  const json = res.json.bind(res);
  res.json = (body) => json(shim(req.path, body));
  original(req, res, next);
};

const port = Number(process.argv[2] || 9000);
const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 3600 });
server.start().then(() => {
  process.stdout.write(`listening ${port}\n`);
});
const stop = () => server.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
