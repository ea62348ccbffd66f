package io.vhostj.bench.jmh;

/**
 * Runs the JMH microbenchmarks of this package from the packaged jar:
 * {@code java -cp tests/target/tests-0.1.0-SNAPSHOT.jar:tests/target/lib/* io.vhostj.bench.jmh.JmhMain [jmh options]}.
 * Every benchmark forks with {@code --add-opens java.base/jdk.internal.misc=ALL-UNNAMED} (agrona 2.x).
 */
public final class JmhMain {
    private JmhMain() {
    }

    public static void main(String[] args) throws Exception {
        org.openjdk.jmh.Main.main(args);
    }
}
