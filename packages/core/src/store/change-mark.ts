/**
 * A point in a change listener's notifications: its LISTEN session, and how many it had heard.
 * A record carries the one taken just before it was read (`CredentialRecord.readMark`), so that
 * a waiter that saw it can tell what has been heard since (`ChangeNotifications.heardSince`).
 * Its own file, without imports: the credential model and the listener both name it.
 */
export interface ChangeMark {
  readonly session: number;
  readonly heard: number;
}
