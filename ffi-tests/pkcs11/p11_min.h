/* The few PKCS#11 (v2.40 / 3.0) definitions the C tests need, so they build without a vendor
 * header: types as on Linux (CK_ULONG is unsigned long, no structure packing), the constants
 * used, and the CK_FUNCTION_LIST as its 68 entries in the order of the standard (v2.40 section
 * 5.14), of which the tests name only the ones they call. Test code only. */
#ifndef CELLAR_P11_MIN_H
#define CELLAR_P11_MIN_H

typedef unsigned long CK_ULONG;
typedef unsigned char CK_BYTE;
typedef CK_BYTE CK_BBOOL;
typedef CK_ULONG CK_RV, CK_SLOT_ID, CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_FLAGS, CK_MECHANISM_TYPE,
    CK_ATTRIBUTE_TYPE, CK_OBJECT_CLASS, CK_KEY_TYPE, CK_USER_TYPE, CK_STATE;

typedef struct { CK_BYTE major, minor; } CK_VERSION;
typedef struct { CK_ATTRIBUTE_TYPE type; void *pValue; CK_ULONG ulValueLen; } CK_ATTRIBUTE;
typedef struct { CK_MECHANISM_TYPE mechanism; void *pParameter; CK_ULONG ulParameterLen; } CK_MECHANISM;
typedef struct { CK_ULONG ulMinKeySize, ulMaxKeySize; CK_FLAGS flags; } CK_MECHANISM_INFO;
typedef struct { CK_SLOT_ID slotID; CK_STATE state; CK_FLAGS flags; CK_ULONG ulDeviceError; } CK_SESSION_INFO;
typedef struct {
    unsigned char label[32], manufacturerID[32], model[16], serialNumber[16];
    CK_FLAGS flags;
    CK_ULONG ulMaxSessionCount, ulSessionCount, ulMaxRwSessionCount, ulRwSessionCount, ulMaxPinLen,
        ulMinPinLen, ulTotalPublicMemory, ulFreePublicMemory, ulTotalPrivateMemory, ulFreePrivateMemory;
    CK_VERSION hardwareVersion, firmwareVersion;
    unsigned char utcTime[16];
} CK_TOKEN_INFO;

typedef struct {
    void *CreateMutex, *DestroyMutex, *LockMutex, *UnlockMutex;
    CK_FLAGS flags;
    void *pReserved;
} CK_C_INITIALIZE_ARGS;
#define CKF_OS_LOCKING_OK 0x2UL

#define CKR_OK 0x0UL
#define CKR_ARGUMENTS_BAD 0x7UL
#define CKR_MECHANISM_INVALID 0x70UL
#define CKR_USER_ALREADY_LOGGED_IN 0x100UL
#define CKR_BUFFER_TOO_SMALL 0x150UL
#define CKR_CRYPTOKI_ALREADY_INITIALIZED 0x191UL
#define CKF_SERIAL_SESSION 0x4UL
#define CKF_RW_SESSION 0x2UL
#define CKF_WRAP 0x20000UL
#define CKF_UNWRAP 0x40000UL
#define CKU_USER 1UL
#define CKS_RW_PUBLIC_SESSION 2UL
#define CKS_RW_USER_FUNCTIONS 3UL
#define CKO_SECRET_KEY 4UL
#define CKK_AES 0x1FUL
#define CKA_CLASS 0x0UL
#define CKA_TOKEN 0x1UL
#define CKA_PRIVATE 0x2UL
#define CKA_LABEL 0x3UL
#define CKA_KEY_TYPE 0x100UL
#define CKA_ID 0x102UL
#define CKA_SENSITIVE 0x103UL
#define CKA_WRAP 0x106UL
#define CKA_UNWRAP 0x107UL
#define CKA_VALUE_LEN 0x161UL
#define CKA_EXTRACTABLE 0x162UL
#define CKM_AES_KEY_GEN 0x1080UL
#define CKM_AES_KEY_WRAP_PAD 0x210AUL
#define CKM_AES_KEY_WRAP_KWP 0x210BUL

typedef void (*CK_ANY_FN)(void);
typedef struct {
    CK_VERSION version;
    CK_ANY_FN fn[68];
} CK_FUNCTION_LIST;

/* Indexes into CK_FUNCTION_LIST.fn (the standard's order). */
enum {
    P11_Initialize = 0, P11_GetFunctionList = 3, P11_GetSlotList = 4, P11_GetTokenInfo = 6,
    P11_GetMechanismList = 7, P11_GetMechanismInfo = 8, P11_OpenSession = 12, P11_CloseSession = 13,
    P11_GetSessionInfo = 15, P11_Login = 18, P11_GenerateKey = 58, P11_WrapKey = 60, P11_UnwrapKey = 61,
    P11_COUNT = 68
};

typedef CK_RV (*P11_GetFunctionList_fn)(CK_FUNCTION_LIST **);
typedef CK_RV (*P11_Initialize_fn)(void *);
typedef CK_RV (*P11_GetSlotList_fn)(CK_BBOOL, CK_SLOT_ID *, CK_ULONG *);
typedef CK_RV (*P11_GetTokenInfo_fn)(CK_SLOT_ID, CK_TOKEN_INFO *);
typedef CK_RV (*P11_GetMechanismList_fn)(CK_SLOT_ID, CK_MECHANISM_TYPE *, CK_ULONG *);
typedef CK_RV (*P11_GetMechanismInfo_fn)(CK_SLOT_ID, CK_MECHANISM_TYPE, CK_MECHANISM_INFO *);
typedef CK_RV (*P11_OpenSession_fn)(CK_SLOT_ID, CK_FLAGS, void *, void *, CK_SESSION_HANDLE *);
typedef CK_RV (*P11_CloseSession_fn)(CK_SESSION_HANDLE);
typedef CK_RV (*P11_GetSessionInfo_fn)(CK_SESSION_HANDLE, CK_SESSION_INFO *);
typedef CK_RV (*P11_Login_fn)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_BYTE *, CK_ULONG);
typedef CK_RV (*P11_GenerateKey_fn)(CK_SESSION_HANDLE, CK_MECHANISM *, CK_ATTRIBUTE *, CK_ULONG, CK_OBJECT_HANDLE *);
typedef CK_RV (*P11_WrapKey_fn)(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, CK_BYTE *, CK_ULONG *);
typedef CK_RV (*P11_UnwrapKey_fn)(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE, CK_BYTE *, CK_ULONG, CK_ATTRIBUTE *,
                                  CK_ULONG, CK_OBJECT_HANDLE *);

#define P11_CALL(list, name) ((P11_##name##_fn)(list)->fn[P11_##name])

#endif
