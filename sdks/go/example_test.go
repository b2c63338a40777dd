package tokenwarden_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
)

func Example() {
	tw, err := tokenwarden.NewClient(tokenwarden.Options{
		BaseURL: "https://tokenwarden.internal",
		APIKey:  os.Getenv("TOKENWARDEN_API_KEY"),
	})
	if err != nil {
		panic(err)
	}
	token, err := tw.Token(context.Background(), "conn_123", &tokenwarden.TokenOptions{MinTTL: time.Minute})
	var twErr *tokenwarden.Error
	switch {
	case errors.As(err, &twErr) && twErr.Code == tokenwarden.CodeNeedsReauth:
		fmt.Println("ask the owner to connect again:", twErr.Reason)
	case err != nil:
		fmt.Println("no token now:", err)
	default:
		fmt.Println("token version", token.Version)
	}
}
