/**
 * `npm start -w @hsmedia/example-homeserver`: runs the demo homeserver on
 * 127.0.0.1:8080 with media under ./example-media.
 */
import { DEMO_SESSIONS, createHomeserver } from './homeserver.js';

const homeserver = createHomeserver({ serverName: 'example.localhost', mediaDir: './example-media', sessions: DEMO_SESSIONS });
homeserver.listen(Number(process.env['PORT'] ?? 8080)).then((url) => {
  process.stdout.write(
    `example homeserver on ${url}\n` +
      `try: curl -H 'Authorization: Bearer alice-session-token' --data-binary @README.md '${url}/_matrix/media/v3/upload?filename=README.md'\n`,
  );
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    homeserver.close().then(() => process.exit(0));
  });
}
