// SPDX-License-Identifier: Apache-2.0
//
// The vault key with its certificate through Java's PKCS11 KeyStore
// (SunPKCS11, OpenJDK 17), with no JDK-internal access: the KeyStore shows
// one PrivateKeyEntry whose certificate is the token's certificate object
// (compared with the DER in AKV_TEST_CERT_DER) and whose private key signs
// SHA256withRSA in the vault; Java verifies the signature with the
// certificate's public key, and writes it to AKV_TEST_SIG_OUT (over the
// bytes of AKV_TEST_MSG) for openssl to verify too.
//
// Usage: java AkvCertKeyStoreTest STATE_DIR   (exit 0 = every check passed)
// Env: AKV_MODULE, AKV_PKCS11_CONFIG, AKV_TEST_CERT_DER, AKV_TEST_MSG,
//      AKV_TEST_SIG_OUT, AKV_TEST_KEY_NAME.
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

public class AkvCertKeyStoreTest {
    private static int passed;
    private static int failed;

    private interface Check {
        void run() throws Exception;
    }

    private static void check(String what, Check c) {
        try {
            c.run();
            passed++;
            System.out.println("PASS: " + what);
        } catch (Throwable t) {
            failed++;
            System.out.println("FAIL: " + what + ": " + t);
        }
    }

    private static void expect(boolean ok, String why) {
        if (!ok) {
            throw new AssertionError(why);
        }
    }

    private static String env(String n) {
        String v = System.getenv(n);
        if (v == null || v.isEmpty()) {
            throw new IllegalStateException("missing env " + n);
        }
        return v;
    }

    public static void main(String[] args) throws Exception {
        Path state = Paths.get(args[0]);
        String cfg = "name = akv\n" + "library = " + env("AKV_MODULE") + "\n"
            + "slotListIndex = 0\n";
        Path file = state.resolve("sunpkcs11-cert.cfg");
        Files.writeString(file, cfg);
        Provider p11 = Security.getProvider("SunPKCS11").configure(file.toString());
        Security.addProvider(p11);
        byte[] want = Files.readAllBytes(Paths.get(env("AKV_TEST_CERT_DER")));
        byte[] msg = Files.readAllBytes(Paths.get(env("AKV_TEST_MSG")));
        KeyStore ks = KeyStore.getInstance("PKCS11", p11);
        ks.load(null, null);
        List<String> aliases = new ArrayList<>(Collections.list(ks.aliases()));
        System.out.println("aliases: " + aliases);
        String[] alias = new String[1];
        check("KeyStore PKCS11 holds one key entry with a certificate", () -> {
            for (String a : aliases) {
                if (ks.isKeyEntry(a) && ks.getCertificate(a) != null) {
                    expect(alias[0] == null, "two key entries: " + aliases);
                    alias[0] = a;
                }
            }
            expect(alias[0] != null, "no key entry with a certificate in " + aliases);
        });
        if (alias[0] == null) {
            System.out.println(passed + " passed, " + failed + " failed");
            System.exit(1);
        }
        check("the entry's alias is the key name", () ->
            expect(alias[0].equals(env("AKV_TEST_KEY_NAME")), "alias " + alias[0]));
        X509Certificate cert = (X509Certificate) ks.getCertificate(alias[0]);
        check("the entry's certificate is the token's certificate (DER)", () ->
            expect(Arrays.equals(cert.getEncoded(), want), "DER differs"));
        check("the same certificate parsed from the DER by Java", () -> {
            X509Certificate c = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new java.io.ByteArrayInputStream(want));
            expect(c.equals(cert), "not equal");
        });
        check("getCertificateChain has the certificate", () -> {
            Certificate[] chain = ks.getCertificateChain(alias[0]);
            expect(chain != null && chain.length >= 1 && chain[0].equals(cert),
                "chain " + Arrays.toString(chain));
        });
        byte[][] sig = new byte[1][];
        check("the entry's private key signs SHA256withRSA (vault Sign)", () -> {
            PrivateKey k = (PrivateKey) ks.getKey(alias[0], null);
            expect(k != null, "no private key");
            Signature s = Signature.getInstance("SHA256withRSA", p11);
            s.initSign(k);
            s.update(msg);
            sig[0] = s.sign();
            expect(sig[0].length == 256, "signature of " + sig[0].length + " bytes");
        });
        check("Java verifies it with the certificate's public key", () -> {
            Signature v = Signature.getInstance("SHA256withRSA", "SunRsaSign");
            v.initVerify(cert.getPublicKey());
            v.update(msg);
            expect(v.verify(sig[0]), "signature does not verify");
            Files.write(Paths.get(env("AKV_TEST_SIG_OUT")), sig[0]);
        });
        check("a changed message does not verify", () -> {
            Signature v = Signature.getInstance("SHA256withRSA", "SunRsaSign");
            v.initVerify(cert.getPublicKey());
            v.update(msg);
            v.update((byte) 1);
            expect(!v.verify(sig[0]), "verified");
        });
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }
}
