package io.vhostj.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What a vhost-user connection can leave behind in this process: memfd and eventfd descriptors
 * and shared mappings of memfds. Everything else (jar files, the JVM's own descriptors) is left
 * out, so the census does not drift while the JVM warms up.
 */
record NativeCensus(List<Integer> memfds, List<Integer> eventfds, int memfdMappings) {
    private static final Path FDS = Path.of("/proc/self/fd");
    private static final Path MAPS = Path.of("/proc/self/maps");

    static NativeCensus take() {
        List<Integer> memfds = new ArrayList<>();
        List<Integer> eventfds = new ArrayList<>();
        String[] names = FDS.toFile().list();
        if (names == null) {
            throw new IllegalStateException("cannot list " + FDS);
        }
        for (String name : names) {
            String target;
            try {
                target = Files.readSymbolicLink(FDS.resolve(name)).toString();
            } catch (NoSuchFileException e) {
                continue; // the descriptor that listed the directory, closed since
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            if (target.startsWith("/memfd:")) {
                memfds.add(Integer.parseInt(name));
            } else if (target.equals("anon_inode:[eventfd]")) {
                eventfds.add(Integer.parseInt(name));
            }
        }
        int mappings;
        try (Stream<String> lines = Files.lines(MAPS)) {
            mappings = (int) lines.filter(l -> l.contains("/memfd:")).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new NativeCensus(memfds, eventfds, mappings);
    }

    /** Descriptors open now that were not open at {@code before}. */
    List<Integer> newDescriptors(NativeCensus before) {
        List<Integer> out = new ArrayList<>();
        memfds.stream().filter(fd -> !before.memfds.contains(fd)).forEach(out::add);
        eventfds.stream().filter(fd -> !before.eventfds.contains(fd)).forEach(out::add);
        return out;
    }

    @Override
    public String toString() {
        return "memfds " + memfds + ", eventfds " + eventfds + ", memfd mappings " + memfdMappings;
    }
}
