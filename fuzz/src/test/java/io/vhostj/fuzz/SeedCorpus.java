package io.vhostj.fuzz;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Writes the committed seed inputs into the directories where Jazzer looks for them
 * ({@code <TestClass>Inputs/<method>/} beside the test class on the test class path).
 * Regenerate after changing an input format, from the module directory, after deleting the two
 * inputs directories:
 *
 * <pre>
 * mvn -q -o test-compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java --add-opens java.base/jdk.internal.misc=ALL-UNNAMED -cp target/test-classes:$(cat target/cp.txt) \
 *     io.vhostj.fuzz.SeedCorpus src/test/resources
 * </pre>
 */
public final class SeedCorpus {
    private SeedCorpus() {
    }

    public static void main(String[] args) throws IOException {
        Path resources = Path.of(args[0]);
        write(resources, VhostUserMessageFuzzTest.class, "serveConnection", MessageSeeds.seeds());
        write(resources, DescriptorChainFuzzTest.class, "popChains", ChainSeeds.seeds());
        write(resources, io.vhostj.blk.BlkRequestFuzzTest.class, "serveRequest", io.vhostj.blk.BlkRequestFuzzTest.seeds());
        write(resources, io.vhostj.fs.FuseRequestFuzzTest.class, "serveRequests", io.vhostj.fs.FuseRequestFuzzTest.seeds());
        write(resources, io.vhostj.vsock.VsockPacketFuzzTest.class, "sendPackets", io.vhostj.vsock.VsockPacketFuzzTest.seeds());
    }

    private static void write(Path resources, Class<?> target, String method, Map<String, byte[]> seeds)
            throws IOException {
        Path dir = resources.resolve(target.getPackageName().replace('.', '/'))
                .resolve(target.getSimpleName() + "Inputs").resolve(method);
        Files.createDirectories(dir);
        for (Map.Entry<String, byte[]> seed : seeds.entrySet()) {
            Files.write(dir.resolve(seed.getKey()), seed.getValue());
        }
        System.out.println(seeds.size() + " seeds in " + dir);
    }
}
