// SPDX-License-Identifier: Apache-2.0
//
// What a Java service does with akv-pkcs11 through SunPKCS11 (OpenJDK 17):
// a data key generated in the token, AES-GCM and AES-CBC through the
// provider, the data key wrapped with the vault RSA public key and unwrapped
// by the vault's unwrapKey, the token's RNG, and the data key kept as a
// token object in the PKCS11 KeyStore across a JVM restart.
//
// Usage: java AkvSunPkcs11Test main|reopen STATE_DIR
//   main    everything above; leaves the token object "java-dek" and the
//           GCM ciphertext it made in STATE_DIR
//   reopen  a new JVM: the KeyStore still holds "java-dek", it decrypts the
//           saved ciphertext, then the entry is deleted
// Environment: AKV_MODULE (the module), AKV_PKCS11_CONFIG (read by the
// module), AKV_TEST_KEY_NAME, AKV_TEST_KEY_VERSION, AKV_TEST_KEY_N (the
// vault key's JWK "n", base64url) to check what the token shows.
//
// Needs --add-exports jdk.crypto.cryptoki/sun.security.pkcs11.wrapper and
// --add-opens jdk.crypto.cryptoki/sun.security.pkcs11 (see vaultKeys).

import static sun.security.pkcs11.wrapper.PKCS11Constants.CKA_CLASS;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKA_ID;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKA_KEY_TYPE;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKA_LABEL;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKA_MODULUS;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKK_RSA;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKO_PRIVATE_KEY;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKO_PUBLIC_KEY;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.interfaces.RSAPublicKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.security.auth.callback.Callback;
import sun.security.pkcs11.wrapper.CK_ATTRIBUTE;
import sun.security.pkcs11.wrapper.PKCS11;

public final class AkvSunPkcs11Test {
    private static final String ALIAS = "java-dek";
    private static final byte[] PLAIN =
        "envelope encryption at rest, 40+ bytes of data".getBytes(StandardCharsets.UTF_8);
    private static final byte[] AAD = "registry-blob-7".getBytes(StandardCharsets.UTF_8);

    private static int passed;
    private static int failed;

    @FunctionalInterface
    private interface Step {
        void run() throws Exception;
    }

    private static void check(String what, Step s) {
        try {
            s.run();
            passed++;
            System.out.println("PASS: " + what);
        } catch (Throwable e) {
            failed++;
            System.out.println("FAIL: " + what + ": " + e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.out.println("    caused by: " + c);
            }
        }
    }

    private static void expect(boolean ok, String why) {
        if (!ok) {
            throw new AssertionError(why);
        }
    }

    private static <T> T need(T v, String what) {
        if (v == null) {
            throw new IllegalStateException("no " + what + " (an earlier step failed)");
        }
        return v;
    }

    private static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            throw new IllegalStateException(name + " is not set");
        }
        return v;
    }

    // State carried from step to step.
    private static Provider p11;
    private static SecretKey dek;
    private static byte[] gcmIv;
    private static byte[] gcmCt;
    private static byte[] cbcIv;
    private static byte[] cbcCt;
    private static PublicKey vaultPub;
    private static PrivateKey vaultPriv;
    private static byte[] wrapped;
    private static SecretKey unwrapped;

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !(args[0].equals("main") || args[0].equals("reopen"))) {
            System.err.println("usage: AkvSunPkcs11Test main|reopen STATE_DIR");
            System.exit(2);
        }
        Path state = Path.of(args[1]);
        check("SunPKCS11 loads the module (slotListIndex 0)", () -> loadProvider(state));
        if (args[0].equals("main")) {
            runMain(state);
        } else {
            runReopen(state);
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }

    private static void loadProvider(Path state) throws Exception {
        // The module's own JSON configuration comes from AKV_PKCS11_CONFIG.
        // Data keys must be extractable to be wrapped (C_WrapKey) and
        // sensitive so their value never leaves the token in clear.
        String cfg = "name = akv\n"
            + "library = " + env("AKV_MODULE") + "\n"
            + "slotListIndex = 0\n"
            + "attributes(generate, CKO_SECRET_KEY, CKK_AES) = {\n"
            + "  CKA_EXTRACTABLE = true\n"
            + "  CKA_SENSITIVE = true\n"
            + "}\n";
        Path file = state.resolve("sunpkcs11.cfg");
        Files.writeString(file, cfg);
        Provider base = Security.getProvider("SunPKCS11");
        p11 = base.configure(file.toString());
        expect(p11.getName().equals("SunPKCS11-akv"), "provider name " + p11.getName());
        Security.addProvider(p11);
    }

    private static void runMain(Path state) {
        check("SecureRandom PKCS11 (C_GenerateRandom)", () -> {
            SecureRandom sr = SecureRandom.getInstance("PKCS11", need(p11, "provider"));
            expect(sr.getProvider() == p11, "provider " + sr.getProvider());
            byte[] a = new byte[32];
            byte[] b = new byte[32];
            sr.nextBytes(a);
            sr.nextBytes(b);
            expect(!Arrays.equals(a, new byte[32]), "all zero");
            expect(!Arrays.equals(a, b), "two draws are equal");
        });

        check("KeyStore PKCS11: load(null, null) needs no PIN, holds no entry yet", () -> {
            KeyStore ks = KeyStore.getInstance("PKCS11", need(p11, "provider"));
            ks.load(null, null);
            // The vault key has no certificate, so SunPKCS11 shows no entry for it;
            // the store_dir is new, so there is no secret key either.
            expect(ks.size() == 0, "aliases " + Collections.list(ks.aliases()));
        });

        check("KeyStore.Builder with a callback never asks for a PIN", () -> {
            AtomicInteger asked = new AtomicInteger();
            KeyStore.Builder b = KeyStore.Builder.newInstance("PKCS11", need(p11, "provider"),
                new KeyStore.CallbackHandlerProtection((Callback[] cbs) -> asked.incrementAndGet()));
            KeyStore ks = b.getKeyStore();
            expect(ks.getType().equals("PKCS11"), "type " + ks.getType());
            expect(asked.get() == 0, "the PIN callback ran " + asked.get() + " times");
        });

        check("KeyGenerator AES-256 in the token (C_GenerateKey)", () -> {
            KeyGenerator kg = KeyGenerator.getInstance("AES", need(p11, "provider"));
            kg.init(256);
            SecretKey k = kg.generateKey();
            expect(k.getAlgorithm().equals("AES"), "algorithm " + k.getAlgorithm());
            // P11Key.toString: "... AES secret key, 256 bits session object,
            // sensitive, extractable" - the template reached the token.
            String d = k.toString();
            expect(d.contains("256 bits") && d.contains("session object")
                    && d.contains("sensitive") && d.contains("extractable")
                    && !d.contains("not extractable"), d);
            expect(k.getEncoded() == null, "a sensitive key's value was readable");
            dek = k;
        });

        check("AES/GCM/NoPadding encrypt + decrypt with AAD (CKM_AES_GCM)", () -> {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding", need(p11, "provider"));
            gcmIv = new byte[12];
            new SecureRandom().nextBytes(gcmIv);
            c.init(Cipher.ENCRYPT_MODE, need(dek, "data key"), new GCMParameterSpec(128, gcmIv));
            c.updateAAD(AAD);
            gcmCt = c.doFinal(PLAIN);
            expect(gcmCt.length == PLAIN.length + 16, "ciphertext " + gcmCt.length + " bytes");
            expect(!Arrays.equals(Arrays.copyOf(gcmCt, PLAIN.length), PLAIN), "not encrypted");
            byte[] back = gcmDecrypt(dek, gcmCt);
            expect(Arrays.equals(back, PLAIN), "decrypted text differs");
            Files.write(state.resolve("gcm.iv"), gcmIv);
            Files.write(state.resolve("gcm.ct"), gcmCt);
        });

        check("AES/GCM refuses a flipped ciphertext bit (AEADBadTagException)", () -> {
            byte[] bad = need(gcmCt, "GCM ciphertext").clone();
            bad[3] ^= 0x01;
            try {
                gcmDecrypt(need(dek, "data key"), bad);
                throw new AssertionError("tampered ciphertext decrypted");
            } catch (AEADBadTagException expected) {
                // the tag check failed, as it must
            }
        });

        check("AES/CBC/PKCS5Padding encrypt + decrypt (CKM_AES_CBC_PAD)", () -> {
            Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding", need(p11, "provider"));
            cbcIv = new byte[16];
            new SecureRandom().nextBytes(cbcIv);
            c.init(Cipher.ENCRYPT_MODE, need(dek, "data key"), new IvParameterSpec(cbcIv));
            cbcCt = c.doFinal(PLAIN);
            int want = (PLAIN.length / 16 + 1) * 16;
            expect(cbcCt.length == want, "ciphertext " + cbcCt.length + " bytes, want " + want);
            expect(Arrays.equals(cbcDecrypt(dek, cbcCt), PLAIN), "decrypted text differs");
            // Multi-part, as a stream would use it.
            Cipher d = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
            d.init(Cipher.DECRYPT_MODE, dek, new IvParameterSpec(cbcIv));
            byte[] a = d.update(cbcCt, 0, 20);
            byte[] b = d.update(cbcCt, 20, cbcCt.length - 20);
            byte[] f = d.doFinal();
            expect(Arrays.equals(concat(a, b, f), PLAIN), "multi-part decryption differs");
        });

        check("vault key found in the token: label, CKA_ID = version, modulus = JWK n", () -> {
            vaultKeys(need(p11, "provider"), env("AKV_TEST_KEY_NAME"));
            RSAPublicKey rsa = (RSAPublicKey) vaultPub;
            BigInteger n = new BigInteger(1, Base64.getUrlDecoder().decode(env("AKV_TEST_KEY_N")));
            expect(rsa.getModulus().equals(n), "modulus differs from the vault's JWK");
            expect(rsa.getPublicExponent().equals(BigInteger.valueOf(65537)),
                "exponent " + rsa.getPublicExponent());
            expect(vaultPriv.getAlgorithm().equals("RSA"), "private key " + vaultPriv);
            expect(vaultPriv.getEncoded() == null, "the vault private key has an encoding");
        });

        check("RSA/ECB/PKCS1Padding WRAP_MODE with the vault public key (C_WrapKey)", () -> {
            Cipher c = Cipher.getInstance("RSA/ECB/PKCS1Padding", need(p11, "provider"));
            c.init(Cipher.WRAP_MODE, need(vaultPub, "vault public key"));
            wrapped = c.wrap(need(dek, "data key"));
            expect(wrapped.length == 256, "wrapped " + wrapped.length + " bytes");
            Files.write(state.resolve("dek.wrapped"), wrapped);
        });

        check("RSA/ECB/PKCS1Padding UNWRAP_MODE with the vault private key (unwrapKey)", () -> {
            Cipher c = Cipher.getInstance("RSA/ECB/PKCS1Padding", need(p11, "provider"));
            c.init(Cipher.UNWRAP_MODE, need(vaultPriv, "vault private key"));
            Key k = c.unwrap(need(wrapped, "wrapped key"), "AES", Cipher.SECRET_KEY);
            expect(k instanceof SecretKey && k.getAlgorithm().equals("AES"), "unwrapped " + k);
            unwrapped = (SecretKey) k;
        });

        check("the unwrapped key decrypts the earlier GCM and CBC ciphertexts", () -> {
            SecretKey k = need(unwrapped, "unwrapped key");
            expect(Arrays.equals(gcmDecrypt(k, need(gcmCt, "GCM ciphertext")), PLAIN), "GCM differs");
            expect(Arrays.equals(cbcDecrypt(k, need(cbcCt, "CBC ciphertext")), PLAIN), "CBC differs");
        });

        check("SunJCE decrypts the token's GCM ciphertext with the unwrapped key bytes", () -> {
            // Java unwraps by C_Decrypt + raw import when the token allows it,
            // so the key bytes are in the JVM: check the token's GCM is plain
            // NIST GCM. With a C_UnwrapKey-made key they would be hidden.
            byte[] raw = need(unwrapped, "unwrapped key").getEncoded();
            expect(raw != null && raw.length == 32, "unwrapped key has no 32-byte value");
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
            c.init(Cipher.DECRYPT_MODE, new javax.crypto.spec.SecretKeySpec(raw, "AES"),
                new GCMParameterSpec(128, gcmIv));
            c.updateAAD(AAD);
            expect(Arrays.equals(c.doFinal(gcmCt), PLAIN), "SunJCE result differs");
        });

        check("unwrap of a corrupted wrapped key fails (vault 400)", () -> {
            byte[] bad = need(wrapped, "wrapped key").clone();
            bad[bad.length / 2] ^= 0x40;
            Cipher c = Cipher.getInstance("RSA/ECB/PKCS1Padding", need(p11, "provider"));
            c.init(Cipher.UNWRAP_MODE, need(vaultPriv, "vault private key"));
            try {
                Key k = c.unwrap(bad, "AES", Cipher.SECRET_KEY);
                throw new AssertionError("unwrapped a corrupted blob into " + k);
            } catch (GeneralSecurityException expected) {
                // the vault refused it (BadParameter)
            }
        });

        check("RSA/ECB/PKCS1Padding ENCRYPT with the public key, DECRYPT by the vault", () -> {
            byte[] secret = "a small secret".getBytes(StandardCharsets.UTF_8);
            Cipher e = Cipher.getInstance("RSA/ECB/PKCS1Padding", need(p11, "provider"));
            e.init(Cipher.ENCRYPT_MODE, need(vaultPub, "vault public key"));
            byte[] ct = e.doFinal(secret);
            expect(ct.length == 256, "ciphertext " + ct.length + " bytes");
            Cipher d = Cipher.getInstance("RSA/ECB/PKCS1Padding", p11);
            d.init(Cipher.DECRYPT_MODE, need(vaultPriv, "vault private key"));
            expect(Arrays.equals(d.doFinal(ct), secret), "decrypted text differs");
        });

        check("KeyStore.setEntry keeps the data key as token object \"" + ALIAS + "\"", () -> {
            KeyStore ks = KeyStore.getInstance("PKCS11", need(p11, "provider"));
            ks.load(null, null);
            ks.setEntry(ALIAS, new KeyStore.SecretKeyEntry(need(dek, "data key")), null);
            KeyStore again = KeyStore.getInstance("PKCS11", p11);
            again.load(null, null);
            List<String> aliases = Collections.list(again.aliases());
            expect(aliases.equals(List.of(ALIAS)), "aliases " + aliases);
            expect(again.entryInstanceOf(ALIAS, KeyStore.SecretKeyEntry.class), "not a secret key entry");
            Key k = again.getKey(ALIAS, null);
            expectStoredDek(k);
            expect(Arrays.equals(gcmDecrypt((SecretKey) k, need(gcmCt, "GCM ciphertext")), PLAIN),
                "the stored key does not decrypt the GCM ciphertext");
        });
    }

    private static void runReopen(Path state) {
        check("a new JVM finds \"" + ALIAS + "\" in the KeyStore and decrypts with it", () -> {
            gcmIv = Files.readAllBytes(state.resolve("gcm.iv"));
            byte[] ct = Files.readAllBytes(state.resolve("gcm.ct"));
            KeyStore ks = KeyStore.getInstance("PKCS11", need(p11, "provider"));
            ks.load(null, null);
            List<String> aliases = Collections.list(ks.aliases());
            expect(aliases.equals(List.of(ALIAS)), "aliases " + aliases);
            SecretKey k = (SecretKey) ks.getKey(ALIAS, null);
            expectStoredDek(k);
            expect(Arrays.equals(gcmDecrypt(k, ct), PLAIN), "decrypted text differs");
        });

        check("KeyStore.deleteEntry destroys the token object", () -> {
            KeyStore ks = KeyStore.getInstance("PKCS11", need(p11, "provider"));
            ks.load(null, null);
            ks.deleteEntry(ALIAS);
            KeyStore again = KeyStore.getInstance("PKCS11", p11);
            again.load(null, null);
            expect(again.size() == 0, "aliases " + Collections.list(again.aliases()));
        });
    }

    // A KeyStore entry for the data key: an AES token object of 32 bytes.
    // JDK 17's P11KeyStore.loadSkey takes CKA_VALUE_LEN (bytes, PKCS#11 v3.0
    // 4.8) as the key's bit length, so it shows "32 bits"; a JDK that
    // multiplies by 8 shows "256 bits". Both mean CKA_VALUE_LEN = 32.
    private static void expectStoredDek(Key k) {
        String d = k.toString();
        expect(k instanceof SecretKey && k.getAlgorithm().equals("AES"), "entry is " + d);
        expect(d.contains("token object") && d.contains("sensitive")
                && (d.contains(" 32 bits") || d.contains(" 256 bits")), "entry is " + d);
    }

    private static byte[] gcmDecrypt(SecretKey k, byte[] ct) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p11);
        c.init(Cipher.DECRYPT_MODE, k, new GCMParameterSpec(128, gcmIv));
        c.updateAAD(AAD);
        return c.doFinal(ct);
    }

    private static byte[] cbcDecrypt(SecretKey k, byte[] ct) throws GeneralSecurityException {
        Cipher c = Cipher.getInstance("AES/CBC/PKCS5Padding", p11);
        c.init(Cipher.DECRYPT_MODE, k, new IvParameterSpec(cbcIv));
        return c.doFinal(ct);
    }

    private static byte[] concat(byte[]... parts) {
        List<Byte> all = new ArrayList<>();
        for (byte[] part : parts) {
            if (part != null) {
                for (byte x : part) {
                    all.add(x);
                }
            }
        }
        byte[] out = new byte[all.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = all.get(i);
        }
        return out;
    }

    // SunPKCS11 turns a private key into a KeyStore entry only when a
    // certificate with the same CKA_ID is in the token, and a vault key has
    // none: no public API reaches it. Do what P11KeyStore does inside: find
    // the objects and make P11Keys of them (P11Key.publicKey/privateKey), so
    // that Cipher sees ordinary SunPKCS11 keys. Sets vaultPub, vaultPriv.
    private static void vaultKeys(Provider p, String label) throws Exception {
        Method getToken = p.getClass().getDeclaredMethod("getToken");
        getToken.setAccessible(true);
        Object token = getToken.invoke(p);
        Class<?> tokenClass = token.getClass();
        Field p11Field = tokenClass.getDeclaredField("p11");
        p11Field.setAccessible(true);
        PKCS11 lib = (PKCS11) p11Field.get(token);
        Method getObjSession = tokenClass.getDeclaredMethod("getObjSession");
        getObjSession.setAccessible(true);
        Class<?> sessionClass = Class.forName("sun.security.pkcs11.Session");
        Method releaseSession = tokenClass.getDeclaredMethod("releaseSession", sessionClass);
        releaseSession.setAccessible(true);
        Method id = sessionClass.getDeclaredMethod("id");
        id.setAccessible(true);
        Class<?> keyClass = Class.forName("sun.security.pkcs11.P11Key");
        Method publicKey = keyClass.getDeclaredMethod("publicKey", sessionClass, long.class,
            String.class, int.class, CK_ATTRIBUTE[].class);
        Method privateKey = keyClass.getDeclaredMethod("privateKey", sessionClass, long.class,
            String.class, int.class, CK_ATTRIBUTE[].class);
        publicKey.setAccessible(true);
        privateKey.setAccessible(true);

        Object session = getObjSession.invoke(token);
        try {
            long sid = (long) id.invoke(session);
            long pub = findOne(lib, sid, CKO_PUBLIC_KEY, label);
            long priv = findOne(lib, sid, CKO_PRIVATE_KEY, label);
            CK_ATTRIBUTE[] a = {new CK_ATTRIBUTE(CKA_MODULUS), new CK_ATTRIBUTE(CKA_ID)};
            lib.C_GetAttributeValue(sid, pub, a);
            int bits = a[0].getBigInteger().bitLength();
            expect(bits == 2048, "modulus " + bits + " bits");
            String version = HexFormat.of().formatHex(a[1].getByteArray());
            expect(version.equalsIgnoreCase(env("AKV_TEST_KEY_VERSION")), "CKA_ID " + version);
            vaultPub = (PublicKey) publicKey.invoke(null, session, pub, "RSA", bits, null);
            vaultPriv = (PrivateKey) privateKey.invoke(null, session, priv, "RSA", bits, null);
        } finally {
            releaseSession.invoke(token, session);
        }
    }

    private static long findOne(PKCS11 lib, long sid, long cls, String label) throws Exception {
        CK_ATTRIBUTE[] tmpl = {
            new CK_ATTRIBUTE(CKA_CLASS, cls),
            new CK_ATTRIBUTE(CKA_KEY_TYPE, CKK_RSA),
            new CK_ATTRIBUTE(CKA_LABEL, label.toCharArray()),
        };
        lib.C_FindObjectsInit(sid, tmpl);
        long[] found;
        try {
            found = lib.C_FindObjects(sid, 8);
        } finally {
            lib.C_FindObjectsFinal(sid);
        }
        expect(found.length == 1, found.length + " objects of class " + cls + " labelled " + label);
        return found[0];
    }
}
