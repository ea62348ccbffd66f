package io.vhostj.tests;

import java.nio.file.Path;

import io.vhostj.vhostuser.backend.VhostUserBackend;
import io.vhostj.vhostuser.backend.VhostUserServer;
import io.vhostj.vhostuser.device.VirtioDevice;
import io.vhostj.vhostuser.sys.NativeException;

/** A device served in this JVM on a listening socket, on a thread of its own, until closed. */
final class ServedDevice implements AutoCloseable {
    private final VhostUserServer server;
    private final Thread thread;

    ServedDevice(VirtioDevice device, Path socket) throws NativeException {
        server = VhostUserServer.listen(new VhostUserBackend(device, 20_000), socket);
        thread = new Thread(server::run, device.name() + "-server");
        thread.start();
    }

    @Override
    public void close() throws InterruptedException {
        server.close();
        thread.join(5000);
        server.release();
    }
}
