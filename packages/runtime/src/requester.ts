/** An authenticated client, as an access-token check (`@hsmedia/client-auth`) or a homeserver gives it. */
export interface Requester {
  readonly userId: string;
  readonly deviceId?: string;
  readonly isGuest: boolean;
}
