package io.vhostj.vhostuser.backend;

/**
 * A well-formed request the backend will not carry out (unsupported message, a value it cannot
 * accept). Logged and answered with an error reply where the frontend expects one; the
 * connection stays up.
 */
final class RequestRefusedException extends Exception {
    RequestRefusedException(String message) {
        super(message, null, false, false);
    }
}
